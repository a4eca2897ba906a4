"""Rebuild textmaker/sample_data/ from the shared SST-2 files (seed 0)."""

import csv
import random
import sys
from pathlib import Path

SST2 = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/sst2")
OUT = Path(__file__).resolve().parent.parent / "textmaker" / "sample_data"


def rows(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        r = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(s.strip(), "positive" if label == "1" else "negative") for s, label in r]


rng = random.Random(0)
train = rng.sample([r for r in rows(SST2 / "train.tsv") if len(r[0].split()) >= 6], 1200)
test = rng.sample(rows(SST2 / "dev.tsv"), 300)
for name, data in (("train", train), ("test", test)):
    with open(OUT / f"sst2_sample_{name}.tsv", "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        f.writelines(f"{s}\t{label}\n" for s, label in data)
