"""SST-2: several seeds of textmaker's defaults, their ensemble and their weight average (one model).

    python benchmarks/seed_averaging.py --work DIR --seeds 0 1 2 [--groups 0,1,2 3,4,5]

Each seed's model is MiniLM trained with textmaker's defaults on all 67,349 sentences and kept in
DIR/seedS; a directory already there is loaded, not retrained (`textmaker classify train
train.tsv --text-column sentence --seed S --output DIR/seedS` writes the same model). Every model is
scored on the dev set; then, for each group of seeds (default: all of them) and each pair within
it, the ensemble (averaged probabilities: N models to run) and `TextClassifier.average` (averaged
weights: one model, what `textmaker average` writes).
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
    p.add_argument("--out", help="JSON results")
    a = p.parse_args()

    from textmaker import TextClassifier, TextDataset

    train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
    dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    models, probs, single = {}, {}, {}
    for seed in a.seeds:
        d = Path(a.work) / f"seed{seed}"
        if not (d / "config.json").is_file():
            t0 = time.perf_counter()
            TextClassifier.create(train, seed=seed, progress=False).save(d)
            print(f"seed {seed} trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        models[seed] = TextClassifier.load(d)
        probs[seed] = models[seed].predict_proba(dev.texts)
        single[seed] = models[seed].evaluate(dev)["accuracy"]
        print(f"seed {seed}: {100 * single[seed]:.2f}%", file=sys.stderr, flush=True)
    y = np.array(dev.with_label_names(models[a.seeds[0]].label_names).label_ids)

    rows = []
    groups = [tuple(int(s) for s in g.split(",")) for g in a.groups] if a.groups else [tuple(a.seeds)]
    seen = set()
    for group in groups:
        for members in [*itertools.combinations(group, 2), group] if len(group) > 2 else [group]:
            if members in seen:
                continue
            seen.add(members)
            ensemble = float(np.mean(np.mean([probs[s] for s in members], 0).argmax(1) == y))
            average = TextClassifier.average([models[s] for s in members]).evaluate(dev)["accuracy"]
            rows.append({"seeds": list(members), "members_mean": float(np.mean([single[s] for s in members])),
                         "best_member": max(single[s] for s in members), "ensemble": ensemble, "average": average})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps({"machine": machine(), "args": vars(a), "single": single, "rows": rows},
                                          indent=2))
    print(f"\n{machine()}\n")
    print("| seeds | members (mean) | best member | ensemble (N models) | weight average (1 model) | average - mean |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {', '.join(map(str, r['seeds']))} | {100 * r['members_mean']:.2f}% | {100 * r['best_member']:.2f}% | "
              f"{100 * r['ensemble']:.2f}% | **{100 * r['average']:.2f}%** | "
              f"{100 * (r['average'] - r['members_mean']):+.2f} |")


if __name__ == "__main__":
    main()
