"""How far a bf16 training step's gradients are from float64's, three ways, on real batches.

    python benchmarks/gradient_fidelity.py [--task qa|classify] [--batches 3]

- bf16 network (now): textmaker's bf16 weights and matrix multiplies with the residual stream
  (embedding sums, residual adds, LayerNorms) in fp32 (`bert.stream_dtype`);
- bf16 stream (before session 14): the same network with everything in bf16;
- autocast: the fp32 network under torch.autocast(bfloat16), as the Trainer computes.

Each is the relative L2 error of every trained weight's gradient against the same network in
float64, on the same batch, with dropout's probability set to 1e-9 (the training code path, no
element dropped), so only rounding differs. Batches as `step_variants.py` takes them (MiniLM, word
embeddings kept). This measures numerics, not speed: see `step_variants.py residual-dtype`.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (class_loss, machine, patched, span_loss, squad_minilm_batches,  # noqa: E402
                    sst2_minilm_batches)

from textmaker.models import bert  # noqa: E402

GROUPS = {"every weight": "", "layer 5": "layer.5.", "layer 0": "layer.0.", "embeddings": "embeddings.",
          "LayerNorms": "LayerNorm"}


def gradients(net, batch, y, loss, autocast=False) -> dict[str, torch.Tensor]:
    net.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = net(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    loss(out, y).backward()
    return {n: p.grad.double() for n, p in net.named_parameters() if p.grad is not None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["classify", "qa"], default="qa")
    p.add_argument("--batches", type=int, default=3)
    a = p.parse_args()
    torch.manual_seed(0)
    if a.task == "qa":
        (net, batches), loss = squad_minilm_batches(60), span_loss
    else:
        (net, batches), loss = sst2_minilm_batches(320), class_loss
    for m in net.modules():  # the training path (cheap dropout, CPU attention branch), nothing dropped
        if isinstance(m, torch.nn.Dropout):
            m.p = 1e-9
        if isinstance(m, bert.BertSelfAttention):
            m.dropout_p = 1e-9
    net.train()
    exact, half = copy.deepcopy(net).double(), copy.deepcopy(net).to(torch.bfloat16)
    picks = [batches[round(i * (len(batches) - 1) / max(a.batches - 1, 1))] for i in range(a.batches)]
    errors = {way: {g: [] for g in GROUPS} for way in ("bf16 network (now)", "bf16 stream (before)", "autocast")}
    for batch, y in picks:
        ref = gradients(exact, batch, y, loss)
        with patched(bert, "stream_dtype", lambda w: w.dtype):
            before = gradients(half, batch, y, loss)
        ways = {"bf16 network (now)": gradients(half, batch, y, loss), "bf16 stream (before)": before,
                "autocast": gradients(net, batch, y, loss, autocast=True)}
        for way, g in ways.items():
            for group, key in GROUPS.items():
                names = [n for n in ref if key in n and ref[n].norm() > 1e-12]  # keys' biases get none
                err = sum((g[n] - ref[n]).square().sum() for n in names) / sum(ref[n].square().sum() for n in names)
                errors[way][group].append(err.sqrt().item())
    shapes = ", ".join("x".join(map(str, b["input_ids"].shape)) for b, _ in picks)
    print(f"{machine()}; {a.task}: batches {shapes}; relative L2 error of the gradients against float64, "
          f"mean over the batches\n")
    print("| way | " + " | ".join(GROUPS) + " |")
    print("|---|" + "---|" * len(GROUPS))
    for way, by_group in errors.items():
        print(f"| {way} | " + " | ".join(f"{100 * sum(v) / len(v):.2f}%" for v in by_group.values()) + " |")


if __name__ == "__main__":
    main()
