"""Several seeds of textmaker's defaults, their ensemble and their weight average (one model).

    python benchmarks/seed_averaging.py --work DIR --seeds 0 1 2 [--groups 0,1,2 3,4,5] [--task qa]

classify (SST-2): each seed's model is MiniLM trained with textmaker's defaults on all 67,349
sentences and kept in DIR/seedS; a directory already there is loaded, not retrained (`textmaker
classify train train.tsv --text-column sentence --seed S --output DIR/seedS` writes the same
model). qa (SQuAD v1.1): MiniLM with the question answerer's defaults (2 epochs) on the 33 training
articles, scored on the 6 held out (the split of squad_qa.py). Every model is scored; then, for each
group of seeds (default: all of them) and each pair within it, the ensemble (classify only:
averaged probabilities, N models to run) and `Task.average` (averaged weights: one model, what
`textmaker average` writes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, machine  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="where each seed's model is kept (and found, if already there)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--groups", nargs="*", help="comma-separated seeds averaged together (default: all the seeds)")
    p.add_argument("--task", choices=["classify", "qa"], default="classify")
    p.add_argument("--out", help="JSON results")
    a = p.parse_args()

    from textmaker import QADataset, QuestionAnswerer, TextClassifier, TextDataset

    if a.task == "classify":
        Task, metric = TextClassifier, "accuracy"
        train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
        dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    else:
        Task, metric = QuestionAnswerer, "f1"
        train, dev = QADataset.from_squad(SHARED / "squad" / "squad-v1.1-dev-39articles.json").split(0.8, seed=0)
    scale = 100 if metric == "accuracy" else 1  # F1 is reported in points already
    models, probs, single = {}, {}, {}
    for seed in a.seeds:
        d = Path(a.work) / f"seed{seed}"
        if not (d / "config.json").is_file():
            t0 = time.perf_counter()
            Task.create(train, seed=seed, progress=False).save(d)
            print(f"seed {seed} trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        models[seed] = Task.load(d)
        if a.task == "classify":
            probs[seed] = models[seed].predict_proba(dev.texts)
        single[seed] = models[seed].evaluate(dev)[metric]
        print(f"seed {seed}: {metric} {scale * single[seed]:.2f}", file=sys.stderr, flush=True)
    y = np.array(dev.with_label_names(models[a.seeds[0]].label_names).label_ids) if a.task == "classify" else None

    rows = []
    groups = [tuple(int(s) for s in g.split(",")) for g in a.groups] if a.groups else [tuple(a.seeds)]
    seen = set()
    for group in groups:
        for members in [*itertools.combinations(group, 2), group] if len(group) > 2 else [group]:
            if members in seen:
                continue
            seen.add(members)
            ensemble = float(np.mean(np.mean([probs[s] for s in members], 0).argmax(1) == y)) if probs else None
            average = Task.average([models[s] for s in members]).evaluate(dev)[metric]
            rows.append({"seeds": list(members), "members_mean": float(np.mean([single[s] for s in members])),
                         "best_member": max(single[s] for s in members), "ensemble": ensemble, "average": average})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps({"machine": machine(), "args": vars(a), "single": single, "rows": rows},
                                          indent=2))
    print(f"\n{machine()}\n")
    pct = lambda x: "n/a" if x is None else f"{scale * x:.2f}" + ("%" if scale == 100 else "")  # noqa: E731
    print(f"| seeds ({metric}) | members (mean) | best member | ensemble (N models) | weight average (1 model) | "
          f"average - mean |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {', '.join(map(str, r['seeds']))} | {pct(r['members_mean'])} | {pct(r['best_member'])} | "
              f"{pct(r['ensemble'])} | **{pct(r['average'])}** | {scale * (r['average'] - r['members_mean']):+.2f} |")


if __name__ == "__main__":
    main()
