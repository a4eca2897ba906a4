"""ONNX dynamic int8 agreement with PyTorch on small MiniLM classifiers: the pooler started at the
identity (the preset's default) against the checkpoint's untrained pooler.

The test suite's fixture recipe (600 bundled SST-2 sentences split 0.8, 4 epochs, seq_len 64), one
model per seed and pooler. For each: the export's own check on its 120-text verification sample
(the figures the exporter's gate reads, and the default gate's p-value: refused below 0.05), and
agreement on the 300 bundled test sentences.

    python benchmarks/int8_small_models.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from textmaker import TextClassifier, TextDataset, presets
from textmaker.export import ExportedModel, Tolerance, export

SAMPLE = Path(__file__).resolve().parent.parent / "textmaker" / "sample_data"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--poolers", nargs="+", default=["identity", "checkpoint"], choices=["identity", "checkpoint"])
    args = ap.parse_args(argv)
    train, val = TextDataset.from_csv(SAMPLE / "sst2_sample_train.tsv", text_column="sentence") \
        .sample(600, seed=1).split(0.8, seed=0)
    test = TextDataset.from_csv(SAMPLE / "sst2_sample_test.tsv", text_column="sentence")
    minilm = presets.PRESETS["minilm_l6_en_uncased"]
    print("| pooler | seed | check: changed of texts, agreement, gate p | held-out agreement | torch accuracy |")
    print("|---|---|---|---|---|")
    for pooler in args.poolers:
        saved = minilm.pop("pooler", None)
        if pooler == "identity":
            minilm["pooler"] = "untrained"
        try:
            for seed in args.seeds:
                clf = TextClassifier.create(train, val, epochs=4, seq_len=64, progress=False, seed=seed)
                with tempfile.TemporaryDirectory() as tmp:
                    v = export(clf, Path(tmp) / "onnx", "onnx", "dynamic", verbose=False,
                               tolerance=Tolerance(min_agreement=1e-9, max_metric_drop=100.0))["verification"]
                    exported = ExportedModel.load(Path(tmp) / "onnx").predict_proba(test.texts).argmax(-1)
                ours = clf.predict_proba(test.texts).argmax(-1)
                accuracy = clf.evaluate(test)["accuracy"]
                gate_p = Tolerance().agreement_p_value(v["samples"], v["labels_changed"])  # the default gate's
                print(f"| {pooler} | {seed} | {v['labels_changed']} of {v['samples']}, "
                      f"{100 * v['label_agreement']:.1f}%, {gate_p:.2f} | "
                      f"{100 * (ours == exported).mean():.1f}% | {100 * accuracy:.2f}% |", flush=True)
        finally:
            minilm.pop("pooler", None)
            if saved is not None:
                minilm["pooler"] = saved


if __name__ == "__main__":
    main()
