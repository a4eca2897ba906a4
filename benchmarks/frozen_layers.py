"""A training step with the bottom encoder layers kept as pre-trained, against every layer trained.

    python benchmarks/frozen_layers.py [--sentences 3200] [--layers 0,1,2]

A step is what the trainer does for one batch of 32 real SST-2 sentences (see common.TrainingStep),
on MiniLM with the word-embedding table kept (textmaker's default before frozen layers). Each way is
its own copy of the network and optimizer; the ways alternate step by step (the order reversed
every step) in one process, so a drift in this CPU's speed falls on all alike. "frozen N" keeps
all the embeddings and the bottom N layers (`BertModel.freeze(N)`, what `frozen_layers=N` does);
"frozen 0" keeps the word-embedding table only, as "every layer trained" does.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TrainingStep, alternating_steps, machine, sst2_minilm_batches  # noqa: E402

from textmaker.training import clip_gradients  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=3200)
    p.add_argument("--layers", default="0,1,2", help="comma-separated numbers of frozen layers")
    a = p.parse_args()
    net, batches = sst2_minilm_batches(a.sentences)
    ways = {}
    for n in map(int, a.layers.split(",")):
        copy_ = copy.deepcopy(net)
        copy_.backbone.freeze(n)
        ways[f"frozen {n}"] = TrainingStep(copy_)
    ms = alternating_steps({name: lambda b, y, step=step: step(b, y, clip_gradients) for name, step in ways.items()},
                           batches)
    first = next(iter(ms))
    print(f"{machine()}; {len(batches) - 20} steps each ({ways[first].precision}), alternating\n")
    print("| way | ms per step | speed vs the first |")
    print("|---|---|---|")
    for name, t in ms.items():
        print(f"| {name} | {t:.1f} | {ms[first] / t:.3f}x |")


if __name__ == "__main__":
    main()
