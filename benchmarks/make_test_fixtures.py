"""Rebuild the real-data slices in tests/fixtures/ from the shared data sets (see its README.md).

    python benchmarks/make_test_fixtures.py [../shared/data]
"""

import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

SHARED = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data")
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

# SST-2 dev as it ships: 872 sentences, labels 0/1.
shutil.copyfile(SHARED / "sst2" / "dev.tsv", OUT / "sst2_dev.tsv")

# SQuAD v1.1 dev: the first 4 of the 39 articles, every question, as SQuAD JSON.
squad = json.loads((SHARED / "squad" / "squad-v1.1-dev-39articles.json").read_text(encoding="utf-8"))
squad["data"] = squad["data"][:4]
(OUT / "squad_v1.1_dev_4articles.json").write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")

# IMDB train: the first 200 reviews of each class in archive order, in the archive's own layout
# (aclImdb/train/{neg,pos}/<id>_<stars>.txt): cased, real punctuation and accents.
counts = {"neg": 0, "pos": 0}
with tarfile.open(SHARED / "imdb" / "aclImdb-train.tar.gz") as src, \
        tarfile.open(OUT / "imdb_train_400.tar.gz", "w:gz") as dst:
    for member in src:
        parts = member.name.split("/")
        if member.isfile() and len(parts) == 4 and parts[2] in counts and counts[parts[2]] < 200:
            counts[parts[2]] += 1
            data = src.extractfile(member).read()
            info = tarfile.TarInfo(member.name)
            info.size, info.mtime = len(data), member.mtime
            dst.addfile(info, io.BytesIO(data))
        if all(n == 200 for n in counts.values()):
            break
