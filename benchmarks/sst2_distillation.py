"""SST-2: what an ensemble of MiniLMs knows, and how much of it one model learns by distillation.

    python benchmarks/sst2_distillation.py --work DIR [--teacher-seeds 0 1 2] [--student-seeds 0]
        [--weight 0.5] [--temperature 2] [--students minilm,awe]

1. Teachers: MiniLM with textmaker's defaults on all 67,349 sentences, one per seed, each saved in
   DIR/teacherS (a directory already there is loaded, not retrained: the same model that
   `textmaker classify train .../train.tsv --text-column sentence --seed S --output DIR/teacherS`
   writes). Each is scored on the dev set, and so is their ensemble (averaged probabilities).
2. Students: `TextClassifier.create(train, teachers=..., distill_weight=W, distill_temperature=T)`,
   everything else the defaults; "minilm" is a MiniLM student (the same size as each teacher, so
   the same speed in an app), "awe" the average-word-embedding baseline, scored beside the same
   baseline trained alone. Students are trained on the teachers' probabilities for the training
   sentences; the dev set is only scored.
Each student runs in this process one after the other; its time includes the teachers labelling
the 67,349 sentences (in bf16 where the CPU has it).
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="where the teachers are kept (and found, if there already)")
    p.add_argument("--teacher-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--student-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--weight", type=float, default=0.5)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--students", default="minilm", help="comma-separated: minilm, awe")
    p.add_argument("--out", help="JSON results")
    a = p.parse_args()

    from textmaker import TextClassifier, TextDataset

    train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
    dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    results: dict = {"machine": machine(), "args": vars(a), "teachers": {}, "students": []}

    def save():
        if a.out:
            Path(a.out).write_text(json.dumps(results, indent=2))

    teachers, probs = [], []
    for seed in a.teacher_seeds:
        d = Path(a.work) / f"teacher{seed}"
        if not (d / "config.json").is_file():
            t0 = time.perf_counter()
            TextClassifier.create(train, seed=seed, progress=False).save(d)
            print(f"teacher {seed} trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        teacher = TextClassifier.load(d)
        teachers.append(teacher)
        probs.append(teacher.predict_proba(dev.texts))  # fp32, as saved
        acc = float(np.mean(probs[-1].argmax(1) == np.array(dev.with_label_names(teacher.label_names).label_ids)))
        results["teachers"][seed] = acc
        print(f"teacher seed {seed}: dev {100 * acc:.2f}%", file=sys.stderr, flush=True)
    y = np.array(dev.with_label_names(teachers[0].label_names).label_ids)
    results["ensemble"] = float(np.mean(np.mean(probs, 0).argmax(1) == y))
    print(f"ensemble of {len(teachers)}: dev {100 * results['ensemble']:.2f}%", file=sys.stderr, flush=True)
    save()

    for kind in a.students.split(","):
        model = "minilm_l6_en_uncased" if kind == "minilm" else "average_word_embedding"
        for seed in a.student_seeds:
            for taught in ([True] if kind == "minilm" else [False, True]):
                kw = dict(teachers=teachers, distill_weight=a.weight, distill_temperature=a.temperature) if taught else {}
                t0 = time.perf_counter()
                clf = TextClassifier.create(train, model=model, seed=seed, progress=False, **kw)
                seconds = time.perf_counter() - t0
                r = {"student": kind, "taught": taught, "seed": seed, "accuracy": clf.evaluate(dev)["accuracy"],
                     "seconds": round(seconds, 1), "precision": clf.history[-1].get("precision"),
                     **({"weight": a.weight, "temperature": a.temperature} if taught else {})}
                results["students"].append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
                save()

    print(f"\n{machine()}\n")
    print("| model | dev accuracy |\n|---|---|")
    for seed, acc in results["teachers"].items():
        print(f"| MiniLM teacher, seed {seed} | {100 * acc:.2f}% |")
    print(f"| ensemble of the {len(teachers)} (averaged probabilities) | {100 * results['ensemble']:.2f}% |")
    for r in results["students"]:
        how = f"taught (weight {r['weight']}, T {r['temperature']})" if r["taught"] else "alone"
        print(f"| {r['student']} student, seed {r['seed']}, {how} | {100 * r['accuracy']:.2f}% ({r['seconds']:.0f} s) |")


if __name__ == "__main__":
    main()
