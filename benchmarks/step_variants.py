"""A whole training step, two ways, alternating step by step: what a change to the step is worth.

    python benchmarks/step_variants.py VARIANT [--sentences 4800]

VARIANT is one of:
- clip-norm:   the clip norm from vector_norm (before session 7) against the dot products
               `training.clip_gradients` uses now;
- fused-bias:  nn.Linear's forward against oneDNN's bias-fused linear
               (torch.ops.mkldnn._linear_pointwise) in a custom autograd Function, in bf16;
               tried in session 7 and not adopted;
- mask-cast:   the dropout mask cast to the activations' dtype and scaled in two operations
               (models/dropout.py) against one (bool mask x 0-dim scale); tried, not adopted.
- sdpa:        attention as it runs in training now (scores, softmax, the cheap dropout mask,
               two batched multiplies) against torch's fused scaled_dot_product_attention kernel,
               which it can only use without attention dropout (SDPA's own dropout on a CPU draws
               per element); tried in session 8, not adopted.
- attention-dropout: attention as it runs in training now against the same computation without
               attention dropout (no mask drawn or applied; hidden dropout unchanged); session 11,
               not adopted.
- softmax-dtype: attention's softmax as it runs now (in bf16 on rows of bert.LONG_ROWS tokens or
               more, in fp32 and cast back on shorter ones) against fp32 and cast back on every row
               (before session 12). SST-2's rows are short: this shows the change costs them nothing;
               its gain is on long rows (benchmarks/squad_qa.py).

A step is what the trainer does for one batch of 32 real SST-2 sentences (length-grouped, padded
to their longest row): forward, loss, backward, gradients into the fp32 masters, clip, fused
AdamW, masters back into the network; in the precision "auto" picks here, with the classifier's
defaults (word embeddings kept). The two ways alternate step by step (the order swapped every
step) in one process on the same weights, so a drift in the machine's speed falls on both alike;
single runs of this CPU drift by 10-25%.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TrainingStep, alternating_steps, machine, sst2_minilm_batches  # noqa: E402

from textmaker.models import bert, dropout  # noqa: E402
from textmaker.training import clip_gradients  # noqa: E402


def vector_norm_clip(optimizer, params, max_norm: float) -> None:
    """The clip before session 7: vector_norm of each flat gradient."""
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    optimizer.grad_scale = torch.clamp(norm / max_norm, min=1.0)


class BiasFusedLinear(torch.autograd.Function):
    """y = x W^T + b with the bias added inside oneDNN's matrix multiply (forward only fuses)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        g2 = gy.reshape(-1, gy.shape[-1])
        return gy @ weight, g2.t() @ x.reshape(-1, x.shape[-1]), g2.sum(0)


def fused_linear_forward(self, x):
    if x.dtype == torch.bfloat16 and x.device.type == "cpu" and torch.is_grad_enabled():
        return BiasFusedLinear.apply(x, self.weight, self.bias)
    return torch.nn.functional.linear(x, self.weight, self.bias)


def one_op_mask(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    return x * (dropout.keep(x.shape, p, x.device) * torch.tensor(1.0 / (1.0 - p), dtype=x.dtype))


@contextlib.contextmanager
def one_op_dropout():
    with patched(dropout, "dropout", one_op_mask), patched(bert, "dropout", one_op_mask):
        yield


@contextlib.contextmanager
def fused_attention(net):
    """Attention dropout off, so BertSelfAttention takes torch's fused SDPA kernel."""
    layers = [m for m in net.modules() if isinstance(m, bert.BertSelfAttention)]
    kept = [m.dropout_p for m in layers]
    for m in layers:
        m.dropout_p = 0.0
    try:
        yield
    finally:
        for m, p in zip(layers, kept):
            m.dropout_p = p


@contextlib.contextmanager
def patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variant", choices=["clip-norm", "fused-bias", "mask-cast", "sdpa", "attention-dropout",
                                       "softmax-dtype"])
    p.add_argument("--sentences", type=int, default=4800)
    a = p.parse_args()
    net, batches = sst2_minilm_batches(a.sentences)
    train_step = TrainingStep(net)

    here = sys.modules[__name__]
    ways = {  # name -> a context in which a step runs that way; the first is the code as it is
        "clip-norm": {"dot (now)": contextlib.nullcontext,
                      "vector_norm": lambda: patched(here, "clip", vector_norm_clip)},
        "fused-bias": {"nn.Linear (now)": contextlib.nullcontext,
                       "bias fused": lambda: patched(torch.nn.Linear, "forward", fused_linear_forward)},
        "mask-cast": {"cast, then scale (now)": contextlib.nullcontext, "one operation": one_op_dropout},
        "sdpa": {"attention with dropout (now)": contextlib.nullcontext,
                 "fused SDPA, no attention dropout": lambda: fused_attention(net)},
        "attention-dropout": {"attention with dropout (now)": contextlib.nullcontext,
                              "no attention dropout": lambda: patched(bert, "dropout", lambda x, p, training: x)},
        "softmax-dtype": {"bf16 softmax on long rows (now)": contextlib.nullcontext,
                          "fp32 softmax on every row": lambda: patched(bert, "LONG_ROWS", 10 ** 9)},
    }[a.variant]

    def step_in(way):
        def step(batch, y) -> None:
            with way():  # the timed step includes entering the way's context, as before
                train_step(batch, y, clip)  # looked up at each call: the clip-norm variant swaps it
        return step

    ms = alternating_steps({name: step_in(way) for name, way in ways.items()}, batches)
    train_step.close()
    print(f"{machine()}; {a.variant}: {len(batches) - 20} steps each ({train_step.precision}), alternating\n")
    print("| way | ms per step |")
    print("|---|---|")
    for name, t in ms.items():
        print(f"| {name} | {t:.1f} |")
    now, other = ms
    print(f"\nnow / {other}: {ms[other] / ms[now]:.3f}x the speed")


clip = clip_gradients  # what step() calls; the clip-norm variant swaps it

if __name__ == "__main__":
    main()
