"""What computing the last encoder layer for the [CLS] row only saves: MiniLM, real SST-2 batches.

    python benchmarks/last_layer.py [--sentences 3200 --rounds 2]

The classifier reads only the pooled [CLS] output, so `BertModel.pooled` runs the last layer's
query, attention output and feed-forward for that row alone. This times a training micro-step
(forward + backward, in the precision textmaker's "auto" picks here, word embeddings frozen as the
classifier's default) and an fp32 evaluation forward pass, both ways, on the same length-grouped
batches of 32 real SST-2 sentences. The two ways alternate batch by batch in one process, so a
drift in the machine's speed falls on both alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, sst2_minilm_batches  # noqa: E402

from textmaker import precision  # noqa: E402
from textmaker.training import param_groups  # noqa: E402

CPU = torch.device("cpu")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=3200)
    p.add_argument("--rounds", type=int, default=2, help="passes over the batches")
    a = p.parse_args()
    net, labelled = sst2_minilm_batches(a.sentences)
    batches = [b for b, _ in labelled]
    mode = precision.resolve("auto", CPU)
    ways = {"full": lambda b: net.backbone(b["input_ids"], b["attention_mask"], b["token_type_ids"])[1],
            "[CLS] row only": lambda b: net.backbone.pooled(b["input_ids"], b["attention_mask"], b["token_type_ids"])}
    train = {k: 0.0 for k in ways}
    weights = precision.TrainingWeights(net, mode, param_groups(net, 0.01))
    net.train()
    for r in range(a.rounds):
        for i, b in enumerate(batches):
            for name in (list(ways) if (i + r) % 2 else list(ways)[::-1]):
                t0 = time.perf_counter()
                with precision.autocast(mode, CPU):
                    loss = net.classifier(net.dropout(ways[name](b))).float().logsumexp(-1).mean()
                loss.backward()
                train[name] += time.perf_counter() - t0
                weights.collect_grads(first=True)
    weights.restore()
    net.eval()
    infer = {k: 0.0 for k in ways}
    with torch.no_grad():
        for r in range(a.rounds):
            for i, b in enumerate(batches):
                for name in (list(ways) if (i + r) % 2 else list(ways)[::-1]):
                    t0 = time.perf_counter()
                    ways[name](b)
                    infer[name] += time.perf_counter() - t0
    n = a.rounds * len(batches)
    print(f"{machine()}; {len(batches)} batches of up to 32 sentences x {a.rounds} rounds\n")
    print(f"| last layer | training forward+backward ({mode}), ms per batch | evaluation forward (fp32), ms per batch |")
    print("|---|---|---|")
    for name in ways:
        print(f"| {name} | {1e3 * train[name] / n:.1f} | {1e3 * infer[name] / n:.1f} |")
    full, cls = ways
    print(f"\n[CLS] row only / full: training {train[full] / train[cls]:.2f}x, "
          f"evaluation {infer[full] / infer[cls]:.2f}x faster")


if __name__ == "__main__":
    main()
