"""Attention's softmax in bf16 training, fp32-and-cast-back against bf16, by row length: where
`textmaker.models.bert.LONG_ROWS` (the length from which training takes the bf16 softmax) belongs
on this CPU.

    python benchmarks/attention_softmax.py

Times the attention core of one layer as training runs it (scores, mask, softmax, the cheap
dropout mask, the multiply by the values), forward and backward, MiniLM's 12 heads of 32, on
random bf16 activations with a quarter of half the rows padded; the two ways alternate, three
rounds, best of each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from textmaker.models.dropout import dropout  # noqa: E402


def attention(q, k, v, mask, fp32_softmax: bool):
    scores = ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).masked_fill(~mask, float("-inf"))
    probs = (torch.softmax(scores, -1, dtype=torch.float32).to(q.dtype) if fp32_softmax
             else torch.softmax(scores, -1))
    return dropout(probs, 0.1, True) @ v


def main() -> None:
    torch.manual_seed(0)
    print(f"{machine()}; attention forward+backward of one layer, bf16, ms (best of 3 rounds)\n")
    print("| batch x tokens | fp32 softmax, cast back | bf16 softmax | bf16 speed |")
    print("|---|---|---|---|")
    for batch, tokens in ((32, 16), (32, 24), (32, 48), (32, 64), (16, 96), (16, 128), (16, 192), (16, 256)):
        q, k, v = (torch.randn(batch, tokens, 12, 32, dtype=torch.bfloat16).transpose(1, 2).requires_grad_()
                   for _ in range(3))
        mask = torch.ones(batch, 1, 1, tokens, dtype=torch.bool)
        mask[: batch // 2, ..., tokens * 3 // 4:] = False
        grad = torch.randn(batch, 12, tokens, 32, dtype=torch.bfloat16)
        n = max(10, 20_000 // tokens)
        best = {True: float("inf"), False: float("inf")}
        for r in range(3):
            for fp32 in ((True, False) if r % 2 == 0 else (False, True)):
                t0 = time.perf_counter()
                for _ in range(n):
                    attention(q, k, v, mask, fp32).backward(grad)
                best[fp32] = min(best[fp32], (time.perf_counter() - t0) / n * 1e3)
        print(f"| {batch} x {tokens} | {best[True]:.2f} | {best[False]:.2f} | {best[True] / best[False]:.2f}x |")


if __name__ == "__main__":
    main()
