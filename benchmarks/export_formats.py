"""Every export of the SST-2 classifiers against torch fp32, in one run.

    python benchmarks/export_formats.py --limit 3000 --epochs 2 [--formats onnx,tflite]

For the MiniLM classifier (fine-tuned here on --limit SST-2 sentences, or --model-dir) and the
AWE baseline: file size, SST-2 dev accuracy, label agreement with torch, batch-1 latency
p50/p90 at the dev set's real lengths and at a fixed 128 tokens, and throughput at batch 32.
TFLite files have fixed [1, seq_len] inputs, so their "batch 32" is 32 single calls.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import SHARED, interleaved_latencies, machine, measure_exports, save_results  # noqa: E402

from textmaker import TextClassifier, TextDataset  # noqa: E402
from textmaker.batching import pad_batch  # noqa: E402


def throughput(model, texts) -> float:
    model.predict_proba(texts[:64], batch_size=32)  # warm-up
    t0 = time.perf_counter()
    model.predict_proba(texts, batch_size=32)
    return len(texts) / (time.perf_counter() - t0)


def measure(name: str, model, reference: np.ndarray, dev: TextDataset, size: int) -> dict:
    probs = model.predict_proba(dev.texts)
    return {"model": name, "size_mb": size / 1e6, "accuracy": float((probs.argmax(-1) == np.array(dev.label_ids)).mean()),
            "agreement": float((probs.argmax(-1) == reference).mean()), "batch32_per_s": throughput(model, dev.texts)}


def batch_one_latencies(models: dict, rows: list[dict], pad_id: int) -> dict[str, tuple[float, float]]:
    """One sentence at a time; the models take turns (see interleaved_latencies)."""
    calls, padded = {}, {}
    for name, model in models.items():
        width = model.runner.fixed_seq_len  # TFLite: its fixed seq_len
        if width not in padded:
            padded[width] = [pad_batch([r], pad_id, width) for r in rows]
        calls[name] = lambda i, run=model.runner, batches=padded[width]: run(batches[i])
    return interleaved_latencies(calls, list(range(len(rows))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--model-dir", help="a trained MiniLM classifier to use instead of training one")
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--models", default="minilm,awe")
    p.add_argument("--work", default="benchmarks/out/exports")
    p.add_argument("--out", default="benchmarks/out/export_formats.json")
    p.add_argument("--reuse", action="store_true", help="measure the exports an earlier run left in --work "
                                                         "(same --model-dir) instead of exporting again")
    p.add_argument("--latency-sentences", type=int, default=200)
    a = p.parse_args()
    train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
    dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    results = []
    for which in a.models.split(","):
        if which == "minilm":
            if a.model_dir:
                clf = TextClassifier.load(a.model_dir)
            else:
                clf = TextClassifier.create(train.sample(a.limit, 0), epochs=a.epochs, seq_len=128, progress=False)
                clf.save(Path(a.work) / "minilm-model")  # for --model-dir in a rerun
        else:
            clf = TextClassifier.create(train, model="average_word_embedding", progress=False)
        reference = clf.predict_proba(dev.texts).argmax(-1)
        size = 4 * sum(t.numel() for t in clf.network.state_dict().values())
        models, rows = measure_exports(clf, which, a, dev, lambda label, m, size: measure(
            label, m, reference, dev, size), measure(f"{which} torch fp32", clf, reference, dev, size))
        # Latency last, the models of the family taking turns: see interleaved_latencies.
        real = clf.preprocessor(dev.texts[: a.latency_sentences])
        fixed = [{"input_ids": (r["input_ids"] * 128)[:128], "token_type_ids": [0] * 128} for r in real]
        for key, inputs in (("", real), ("_128", fixed)):
            for label, (p50, p90) in batch_one_latencies(models, inputs, clf.preprocessor.pad_id).items():
                rows[label].update({f"p50_ms{key}": p50, f"p90_ms{key}": p90})
        results.extend(rows.values())
        save_results(a.out, vars(a), machine(), results)  # after each model: a cut run keeps what it measured
    print_table(results)


def print_table(results: list[dict]) -> None:
    ms = lambda a, b: f"{a:.3g} / {b:.3g}"  # noqa: E731  (AWE runs in a tenth of a millisecond)
    common.print_table(
        ["model", "size MB", "dev accuracy", "agreement with torch", "batch-1 p50/p90 ms (real lengths)",
         "p50/p90 ms (128 tokens)", "batch-32 examples/s"], results,
        lambda r: [f"{r['size_mb']:.3g}", f"{100 * r['accuracy']:.2f}%", f"{100 * r['agreement']:.1f}%",
                   ms(r["p50_ms"], r["p90_ms"]), ms(r["p50_ms_128"], r["p90_ms_128"]), f"{r['batch32_per_s']:.0f}"])


if __name__ == "__main__":
    main()
