"""Would averaged weights beat the last ones? One SST-2 run with textmaker's defaults, several answers.

    python benchmarks/weight_averaging.py [--limit 0] [--seeds 0 1]

The run trains as `TextClassifier.create` does by default, and on the side keeps averages of the fp32
master weights: exponential moving averages (decay 0.995, 0.998, 0.999, 0.9995, updated every 4
optimizer steps with the decay to the 4th power) and the plain average over the last third and the
last sixth of the steps. Each is then loaded into the classifier and scored on the SST-2 dev set
beside the final weights. All come from one trajectory, so their differences are paired: free of
the seed-to-seed spread (a standard deviation of 0.3-0.7 points at full size) that separate runs
would add. An idea is tried here before it becomes an option; nothing in textmaker keeps averages
along one run today (`--seeds` averages separate runs).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, machine  # noqa: E402

EVERY = 4
DECAYS = (0.995, 0.998, 0.999, 0.9995)
TAILS = {"last third": 3, "last sixth": 6}


class Averages:
    """Averages of the masters, updated after every EVERY-th optimizer step."""

    def __init__(self, total_steps: int):
        self.total, self.steps, self.masters = total_steps, 0, None
        self.ema: dict[float, list[torch.Tensor]] = {}
        self.tail: dict[str, list[torch.Tensor]] = {}
        self.tail_n = dict.fromkeys(TAILS, 0)

    def update(self, masters: list[torch.Tensor]) -> None:
        if self.masters is None:
            self.masters = masters
            self.ema = {d: [m.detach().clone() for m in masters] for d in DECAYS}
        self.steps += 1
        if self.steps % EVERY:
            return
        now = [m.detach() for m in masters]
        for d, bufs in self.ema.items():
            torch._foreach_lerp_(bufs, now, 1 - d ** EVERY)
        for name, part in TAILS.items():
            if self.steps > self.total - self.total // part:
                self.tail_n[name] += 1
                if name not in self.tail:
                    self.tail[name] = [m.clone() for m in now]
                else:
                    torch._foreach_lerp_(self.tail[name], now, 1.0 / self.tail_n[name])

    def variants(self) -> dict[str, list[torch.Tensor]]:
        return {**{f"EMA {d}": b for d, b in self.ema.items()}, **{f"average of the {k}": b for k, b in self.tail.items()}}


def run(seed: int, limit: int) -> dict:
    from textmaker import TextClassifier, TextDataset, precision

    train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
    dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    if limit:
        train = train.sample(limit, seed)
    held_out = min(200, len(train) // 10)  # what create() keeps back to check exports on
    averages = Averages(math.ceil((len(train) - held_out) / 32) * 3)
    snapshots: dict[str, dict[str, torch.Tensor]] = {}
    publish, restore = precision.TrainingWeights.publish, precision.TrainingWeights.restore

    def publish_and_average(self) -> None:
        publish(self)
        averages.update(self.masters())

    def snapshot_and_restore(self) -> None:
        # Before training hands the network back: each average's state dict, through the weights' own
        # state_dict() (the masters by name in either precision), then the final masters as they were.
        if self.active and averages.masters is not None:
            final = [m.detach().clone() for m in averages.masters]
            with torch.no_grad():
                for name, bufs in averages.variants().items():
                    torch._foreach_copy_([m.detach() for m in averages.masters], bufs)
                    snapshots[name] = self.state_dict()
                torch._foreach_copy_([m.detach() for m in averages.masters], final)
        restore(self)

    precision.TrainingWeights.publish = publish_and_average
    precision.TrainingWeights.restore = snapshot_and_restore
    try:
        t0 = time.perf_counter()
        clf = TextClassifier.create(train, seed=seed, progress=False)
        seconds = time.perf_counter() - t0
    finally:
        precision.TrainingWeights.publish, precision.TrainingWeights.restore = publish, restore
    result = {"seed": seed, "train_sentences": len(train), "steps": averages.steps, "train_seconds": round(seconds, 1),
              "precision": clf.history[-1].get("precision"), "final weights": clf.evaluate(dev)["accuracy"]}
    for name, state in snapshots.items():
        clf.network.load_state_dict(state)
        result[name] = clf.evaluate(dev)["accuracy"]
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=0, help="training sentences (0: all 67,349)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    a = p.parse_args()
    results = []
    for seed in a.seeds:
        results.append(run(seed, a.limit))
        print(json.dumps(results[-1]), flush=True)
    print(f"\n{machine()}\n")
    names = [k for k in results[0] if k not in ("seed", "train_sentences", "steps", "train_seconds", "precision")]
    print("| weights | " + " | ".join(f"seed {r['seed']}" for r in results) + " | mean | vs final (mean) |")
    print("|---|" + "---|" * (len(results) + 2))
    for name in names:
        accs = [100 * r[name] for r in results]
        final = sum(100 * r["final weights"] for r in results) / len(results)
        mean = sum(accs) / len(accs)
        print(f"| {name} | " + " | ".join(f"{x:.2f}%" for x in accs) + f" | {mean:.2f}% | {mean - final:+.2f} |")


if __name__ == "__main__":
    main()
