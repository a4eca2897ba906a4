"""Every export of the SST-2 classifiers against torch fp32, in one run.

    python benchmarks/export_formats.py --limit 3000 --epochs 2 [--formats onnx,tflite]

For the MiniLM classifier (fine-tuned here on --limit SST-2 sentences, or --model-dir) and the
AWE baseline: file size, SST-2 dev accuracy, label agreement with torch, batch-1 latency
p50/p90 at the dev set's real lengths and at a fixed 128 tokens, and throughput at batch 32.
TFLite files have fixed [1, seq_len] inputs, so their "batch 32" is 32 single calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, machine  # noqa: E402

from textmaker import TextClassifier, TextDataset  # noqa: E402
from textmaker.batching import pad_batch  # noqa: E402
from textmaker.export import Tolerance, load_exported  # noqa: E402

MODES = ["none", "float16", "dynamic", "int8"]


def latencies(run_batch, rows, pad_id, width=None, n=200) -> tuple[float, float]:
    times = []
    for r in rows[:n]:
        batch = pad_batch([r], pad_id, width)
        t0 = time.perf_counter()
        run_batch(batch)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.percentile(times, 50)), 1000 * float(np.percentile(times, 90))


def throughput(model, texts) -> float:
    model.predict_proba(texts[:64], batch_size=32)  # warm-up
    t0 = time.perf_counter()
    model.predict_proba(texts, batch_size=32)
    return len(texts) / (time.perf_counter() - t0)


def measure(name: str, model, reference: np.ndarray, dev: TextDataset, rows, fixed_rows, size: int) -> dict:
    probs = model.predict_proba(dev.texts)
    runner = getattr(model, "runner", None)
    if runner is None:
        run = lambda b: model._outputs(b)  # noqa: E731
    else:
        run = runner
    width = runner.fixed_seq_len if runner is not None else None
    p50, p90 = latencies(run, rows, model.preprocessor.pad_id, width)
    f50, f90 = latencies(run, fixed_rows, model.preprocessor.pad_id, width)
    return {"model": name, "size_mb": size / 1e6, "accuracy": float((probs.argmax(-1) == np.array(dev.label_ids)).mean()),
            "agreement": float((probs.argmax(-1) == reference).mean()), "p50_ms": p50, "p90_ms": p90,
            "p50_ms_128": f50, "p90_ms_128": f90, "batch32_per_s": throughput(model, dev.texts)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--model-dir", help="a trained MiniLM classifier to use instead of training one")
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--models", default="minilm,awe")
    p.add_argument("--work", default="benchmarks/out/exports")
    p.add_argument("--out", default="benchmarks/out/export_formats.json")
    a = p.parse_args()
    train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
    dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    results = []
    for which in a.models.split(","):
        if which == "minilm":
            clf = TextClassifier.load(a.model_dir) if a.model_dir else TextClassifier.create(
                train.sample(a.limit, 0), epochs=a.epochs, seq_len=128, progress=False)
        else:
            clf = TextClassifier.create(train, model="average_word_embedding", progress=False)
        rows = clf.preprocessor(dev.texts)
        fixed = [{"input_ids": (r["input_ids"] * 128)[:128], "token_type_ids": [0] * 128} for r in rows]
        reference = clf.predict_proba(dev.texts).argmax(-1)
        size = 4 * sum(t.numel() for t in clf.network.state_dict().values())
        results.append(measure(f"{which} torch fp32", clf, reference, dev, rows, fixed, size))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        for fmt in a.formats.split(","):
            for mode in MODES:
                out = Path(a.work) / f"{which}-{fmt}-{mode}"
                try:
                    meta = clf.export(out, fmt, mode, representative_data=dev,
                                      tolerance=Tolerance(min_agreement=0.0, max_metric_drop=100.0))
                except Exception as e:  # a converter failure is a result too
                    results.append({"model": f"{which} {fmt} {mode}", "error": str(e).splitlines()[0][:200]})
                    print(json.dumps(results[-1]), file=sys.stderr, flush=True)
                    continue
                exported = load_exported(out)
                results.append(measure(f"{which} {fmt} {mode}", exported, reference, dev, rows, fixed,
                                       meta["size_bytes"]))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"args": vars(a), "machine": machine(), "results": results}, indent=2))
    print("| model | size MB | dev accuracy | agreement with torch | batch-1 p50/p90 ms (real lengths) | "
          "p50/p90 ms (128 tokens) | batch-32 examples/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['model']} | failed: {r['error']} | | | | | |")
            continue
        print(f"| {r['model']} | {r['size_mb']:.1f} | {100 * r['accuracy']:.2f}% | {100 * r['agreement']:.1f}% | "
              f"{r['p50_ms']:.1f} / {r['p90_ms']:.1f} | {r['p50_ms_128']:.1f} / {r['p90_ms_128']:.1f} | "
              f"{r['batch32_per_s']:.0f} |")


if __name__ == "__main__":
    main()
