"""A whole training step, two ways, alternating step by step: what a change to the step is worth.

    python benchmarks/step_variants.py VARIANT [--sentences 4800]
    python benchmarks/step_variants.py VARIANT --task qa [--questions 1000]

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
               attention dropout's draws (an all-kept mask, not drawn; hidden dropout unchanged);
               session 11 (then with no mask applied either), not adopted.
- softmax-dtype: attention's softmax as it runs now (in bf16 on rows of bert.LONG_ROWS tokens or
               more, in fp32 and cast back on shorter ones) against fp32 and cast back on every row
               (before session 12). SST-2's rows are short: this shows the change costs them nothing;
               its gain is on long rows (benchmarks/squad_qa.py).
- attention-passes: attention as it runs in training now (the padding's -inf added inside the
               score multiply by baddbmm, the 1/sqrt(d) scale on the queries, dropout's bool mask
               selecting the probabilities, its 1/(1-p) on the output) against before session 13
               (the scale on the scores, a masked_fill for the padding, the mask cast to bf16,
               scaled by 1/(1-p) and multiplied in): three fewer passes over the T x T tensors.
- residual-dtype: a bf16 network's residual stream (embedding sums, residual adds, LayerNorms and
               what flows between sublayers) in fp32, as under autocast (now), against in bf16
               (before session 14): the casts and fp32 passes it costs.

--task qa steps the span extractor on batches of 16 real SQuAD windows (up to 384 tokens), where the
T x T attention tensors are a large part of a step, instead of the classifier on SST-2 sentences.

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
from common import (TrainingStep, alternating_steps, class_loss, machine, patched, span_loss,  # noqa: E402
                    squad_minilm_batches, sst2_minilm_batches)

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


def previous_attention_forward(self, queries, x, mask):
    """BertSelfAttention.forward's training branch on a CPU before session 13 (the other branch as now)."""
    B, T, C = x.shape
    heads = (B, -1, self.n_head, C // self.n_head)
    q = self.query(queries).view(heads).transpose(1, 2)
    k, v = (lin(x).view(heads).transpose(1, 2) for lin in (self.key, self.value))
    scores = ((q @ k.transpose(-2, -1)) * (C // self.n_head) ** -0.5).masked_fill(~mask, float("-inf"))
    if T >= bert.LONG_ROWS:
        probs = torch.softmax(scores, -1)
    else:
        probs = torch.softmax(scores, -1, dtype=torch.float32).to(q.dtype)
    y = dropout.dropout(probs, self.dropout_p, True) @ v
    return y.transpose(1, 2).reshape(B, -1, C)


def all_kept(shape, p, device):
    return torch.ones(1, dtype=torch.bool, device=device).expand(shape)


def one_op_mask(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    return x * (dropout.keep(x.shape, p, x.device) * torch.tensor(1.0 / (1.0 - p), dtype=x.dtype))


@contextlib.contextmanager
def one_op_dropout():
    with patched(dropout, "dropout", one_op_mask):  # hidden dropout (attention selects with the bool mask)
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variant", choices=["clip-norm", "fused-bias", "mask-cast", "sdpa", "attention-dropout",
                                       "softmax-dtype", "attention-passes", "residual-dtype"])
    p.add_argument("--sentences", type=int, default=4800)
    p.add_argument("--task", choices=["classify", "qa"], default="classify")
    p.add_argument("--questions", type=int, default=1000, help="SQuAD questions, with --task qa")
    a = p.parse_args()
    if a.task == "qa":
        (net, batches), loss = squad_minilm_batches(a.questions), span_loss
    else:
        (net, batches), loss = sst2_minilm_batches(a.sentences), class_loss
    train_step = TrainingStep(net, loss)

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
                              "no attention dropout draws": lambda: patched(bert, "keep", all_kept)},
        "softmax-dtype": {"bf16 softmax on long rows (now)": contextlib.nullcontext,
                          "fp32 softmax on every row": lambda: patched(bert, "LONG_ROWS", 10 ** 9)},
        "attention-passes": {"padding in baddbmm, scale on queries, mask selects (now)": contextlib.nullcontext,
                             "before session 13": lambda: patched(bert.BertSelfAttention, "forward",
                                                                  previous_attention_forward)},
        "residual-dtype": {"fp32 residual stream (now)": contextlib.nullcontext,
                           "bf16 residual stream": lambda: patched(bert, "stream_dtype", lambda w: w.dtype)},
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
