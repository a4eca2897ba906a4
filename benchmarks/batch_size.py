"""A training step on a batch of 2N sentences against two steps on its halves (batch N).

    python benchmarks/batch_size.py [--batch 64] [--sentences 4800]

Real SST-2 sentences (seed 0) in length-grouped batches of --batch, each sorted by length and
split into its shorter and longer half, each half padded to its own longest row; MiniLM with
textmaker's defaults (the embeddings and the bottom layer kept, bf16 where the CPU has it). The
two ways are two copies of the network and optimizer, alternating batch by batch (the order
reversed every batch), so a drift in this CPU's speed falls on both alike; the first 10 batches
are not timed. What a larger batch saves is the per-step cost that does not grow with the rows:
the optimizer's passes over the weights and each operator's fixed overhead.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TrainingStep, machine, padded_batch, sst2_minilm_rows  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--sentences", type=int, default=4800)
    a = p.parse_args()
    from textmaker.batching import batch_order
    from textmaker.training import clip_gradients

    net, pad_id, rows, labels = sst2_minilm_rows(a.sentences)
    net.backbone.freeze(1)

    def batch(ix):
        return padded_batch(rows, labels, ix, pad_id)

    whole, halves = TrainingStep(copy.deepcopy(net)), TrainingStep(copy.deepcopy(net))
    seconds, timed, half = {"whole": 0.0, "halves": 0.0}, 0, a.batch // 2
    order = [ix for ix in batch_order([len(r["input_ids"]) for r in rows], a.batch, random.Random(0))
             if len(ix) == a.batch]
    for k, ix in enumerate(order):
        ix = sorted(ix, key=lambda i: len(rows[i]["input_ids"]))
        big, low, high = batch(ix), batch(ix[:half]), batch(ix[half:])
        ways = {"whole": lambda: whole(*big, clip_gradients),
                "halves": lambda: (halves(*low, clip_gradients), halves(*high, clip_gradients))}
        for name in (list(ways) if k % 2 else list(ways)[::-1]):
            t0 = time.perf_counter()
            ways[name]()
            if k >= 10:
                seconds[name] += time.perf_counter() - t0
        timed += k >= 10
    print(f"{machine()}; {timed} batches of {a.batch} ({whole.precision}), alternating\n")
    print(f"| way | ms per {a.batch} sentences | ms per sentence | speed |")
    print("|---|---|---|---|")
    for name, label in (("halves", f"two steps of {half}"), ("whole", f"one step of {a.batch}")):
        ms = 1e3 * seconds[name] / timed
        print(f"| {label} | {ms:.1f} | {ms / a.batch:.2f} | {seconds['halves'] / seconds[name]:.3f}x |")


if __name__ == "__main__":
    main()
