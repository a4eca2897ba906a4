"""Every export of a SQuAD question-answering model against torch fp32, in one run.

    python benchmarks/export_qa.py --train-limit 3000 --eval-limit 300 --epochs 1 [--model-dir DIR]

MiniLM fine-tuned here on --train-limit questions of the shared SQuAD v1.1 articles (split by
article, as benchmarks/squad_qa.py does), or a trained model from --model-dir. For torch fp32 and
each export: file size, EM/F1 on the held-out articles' questions, answer agreement with torch,
and the latency of one question (`answer(question, paragraph)`, batch 1, median and p90).
TFLite files have fixed [1, seq_len] inputs: every window is padded to seq_len and run alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_latencies, machine, measure_exports, print_table, save_results  # noqa: E402
from squad_qa import data  # noqa: E402

from textmaker.metrics import f1_score  # noqa: E402
from textmaker.tasks.question_answer import QuestionAnswerer  # noqa: E402


def measure(name: str, model, reference: dict, val, size: int) -> dict:
    metrics, predictions, _, _ = model._score(val, model.make_windows(val.examples))  # evaluate() + predict()
    return {"model": name, "size_mb": size / 1e6, "exact_match": metrics["exact_match"], "f1": metrics["f1"],
            "agreement": float(np.mean([predictions[q] == reference[q] for q in reference])),
            "answer_f1_with_torch": 100 * float(np.mean([f1_score(predictions[q], reference[q]) for q in reference]))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-limit", type=int, default=3000)
    p.add_argument("--eval-limit", type=int, default=300)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-dir", help="a trained QuestionAnswerer to use instead of training one")
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--latency-questions", type=int, default=50)
    p.add_argument("--work", default="benchmarks/out/exports")
    p.add_argument("--out", default="benchmarks/out/export_qa.json")
    p.add_argument("--reuse", action="store_true", help="measure the exports an earlier run left in --work "
                                                         "(same --model-dir) instead of exporting again")
    a = p.parse_args()
    train, val = data(a)
    if a.model_dir:
        qa = QuestionAnswerer.load(a.model_dir)
    else:
        qa = QuestionAnswerer.create(train, epochs=a.epochs, seq_len=a.seq_len, seed=a.seed, progress=False)
        qa.save(Path(a.work) / "qa-model")  # for --model-dir in a rerun
    reference = qa.predict(val)
    size = 4 * sum(t.numel() for t in qa.network.state_dict().values())
    models, rows = measure_exports(qa, "qa", a, val, lambda label, m, size: measure(label, m, reference, val, size),
                                   measure("qa torch fp32", qa, reference, val, size))
    # One question with its paragraph, batch 1, the models taking turns (see interleaved_latencies).
    calls = {label: (lambda e, m=m: m.answer(e.question, e.context)) for label, m in models.items()}
    for label, (p50, p90) in interleaved_latencies(calls, val.examples[: a.latency_questions]).items():
        rows[label].update({"p50_ms": p50, "p90_ms": p90})
    results = list(rows.values())
    save_results(a.out, vars(a), machine(), results)
    print(f"{len(train)} training questions x {a.epochs} epoch(s), seq_len {a.seq_len}; {len(val)} held-out "
          f"questions\n")
    print_table(["model", "size MB", "EM", "F1", "answers equal to torch's", "answer F1 with torch's",
                 "one question p50/p90 ms"], results,
                lambda r: [f"{r['size_mb']:.1f}", f"{r['exact_match']:.2f}", f"{r['f1']:.2f}",
                           f"{100 * r['agreement']:.1f}%", f"{r['answer_f1_with_torch']:.1f}",
                           f"{r['p50_ms']:.0f} / {r['p90_ms']:.0f}"])

if __name__ == "__main__":
    main()
