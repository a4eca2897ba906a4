"""Where one MiniLM training step's time goes, per precision: the share in matrix multiplies.

    python benchmarks/profile_step.py [--batch 32 --tokens 24 --steps 6]
    python benchmarks/profile_step.py --steady [--sentences 2400 --warm 20 --steps 40]
    python benchmarks/profile_step.py --steady --task qa [--questions 600 --warm 10 --steps 20]
    python benchmarks/profile_step.py --ceiling [--sentences 2400 --warm 20 --steps 40]

Profiles textmaker's own training loop (Trainer.fit on real SST-2 sentences cut to --tokens) with
torch.profiler, fp32 and the precision "auto" picks on this CPU, and prints the CPU time of the
step's operators grouped: matrix multiplies, the optimizer, and the rest. That short run includes
model loading and each new shape's first step; --steady instead profiles --steps training steps
(common.TrainingStep, the precision "auto" picks) on length-grouped batches of 32 real SST-2
sentences after --warm steps, and prints each operator's milliseconds per step; with --task qa,
of the span extractor on length-grouped batches of 16 real SQuAD windows of up to 384 tokens.

--ceiling bounds what any faster step could give on this CPU at the same arithmetic: it counts the
floating-point operations of the same steady steps' matrix multiplies (torch's FlopCounterMode),
times the steps unprofiled, and measures the best rate this CPU's multiply kernels reach (MKL
through torch.mm and oneDNN through mkldnn_linear, in the step's precision, on a 2048-cube and on
the step's own shapes).
The step's multiplies alone, at that best rate, take the floor time; the step's time over that floor
is the most any change of kernels, fusion or overhead can speed it up without less arithmetic. It
also prints the rate of each of the step's multiplies as it runs inside the step (profiled).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (SHARED, TrainingStep, class_loss, machine, span_loss,  # noqa: E402
                    squad_minilm_batches, sst2_minilm_batches)

from textmaker import TextClassifier, TextDataset  # noqa: E402
from textmaker.precision import resolve  # noqa: E402
from textmaker.training import clip_gradients  # noqa: E402

CPU = torch.device("cpu")

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_scaled_dot_product",
          "aten::mkldnn_", "aten::linear", "aten::matmul", "onednn", "mkldnn")
OPTIMIZER = ("adamw", "_fused_adamw", "_foreach_", "Optimizer.step")


def profile(precision: str, batch: int, tokens: int, steps: int) -> dict:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    data = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence").sample(batch * steps, 0)
    texts = [" ".join(t.split()[:tokens]) for t in data.texts]
    data = TextDataset.from_lists(texts, data.labels)
    t0 = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        TextClassifier.create(data, epochs=1, batch_size=batch, seq_len=tokens + 2, progress=False,
                              precision=precision)
    seconds = time.perf_counter() - t0
    return {"precision": precision, "seconds": seconds, **grouped(prof.key_averages(), 8)}


def grouped(events, top: int) -> dict:
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in MATMUL))
    opt = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in OPTIMIZER))
    largest = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    return {"total_us": total, "matmul_share": mm / total, "optimizer_share": opt / total,
            "top": [(e.key, e.self_cpu_time_total / total, e.self_cpu_time_total) for e in largest]}


def steady(task: str, examples: int, warm: int, steps: int) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    if task == "qa":
        (net, batches), loss, what = squad_minilm_batches(examples), span_loss, "16 real SQuAD windows"
    else:
        (net, batches), loss, what = sst2_minilm_batches(examples), class_loss, "32 real SST-2 sentences"
    if len(batches) < warm + steps:
        raise SystemExit(f"{examples} examples give {len(batches)} batches; --warm + --steps needs more")
    step = TrainingStep(net, loss)
    for batch, labels in batches[:warm]:  # oneDNN creates its kernels for each new shape once
        step(batch, labels, clip_gradients)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch, labels in batches[warm:warm + steps]:
            step(batch, labels, clip_gradients)
    step.close()
    g = grouped(prof.key_averages(), 12)
    print(f"{machine()}; {steps} steps after {warm} ({step.precision}), batches of {what}\n")
    print("| profiled CPU ms per step | matrix multiplies | optimizer | other |")
    print("|---|---|---|---|")
    print(f"| {g['total_us'] / steps / 1e3:.1f} | {100 * g['matmul_share']:.0f}% | {100 * g['optimizer_share']:.0f}% | "
          f"{100 * (1 - g['matmul_share'] - g['optimizer_share']):.0f}% |")
    print("\nthe largest operators, ms per step (share):")
    print("; ".join(f"{name} {us / steps / 1e3:.1f} ({100 * share:.0f}%)" for name, share, us in g["top"]))


def best_rate(shapes: list[tuple[int, int, int]], dtype: torch.dtype, seconds: float = 1.0) -> dict:
    """GFLOP/s of C = A B for each (m, k, n) in `dtype`, through torch.mm (MKL for fp32) and oneDNN
    (mkldnn_linear)."""
    def rate(fn, flops: float) -> float:
        for _ in range(3):
            fn()
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            fn()
            n += 1
        return flops * n / (time.perf_counter() - t0) / 1e9

    out = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        am, wm = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
        out[(m, k, n)] = {"mkl": rate(lambda: torch.mm(a, b), 2 * m * k * n),
                          "onednn": rate(lambda: torch._C._nn.mkldnn_linear(am, wm, None), 2 * m * k * n)}
    return out


def in_step_rates(step: TrainingStep, batches: list) -> dict[str, list[float]]:
    """Each matrix multiply as it runs inside the steps on `batches`: "operator m x k x n" (T for
    the batch's tokens; attention's batched multiplies together) -> [CPU us, flops, calls]."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    out: dict[str, list[float]] = {}
    weight_dims = {d for w in step.net.parameters() for d in w.shape}  # never read as T
    for batch, labels in batches:
        tokens = batch["input_ids"].numel()
        with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            step(batch, labels, clip_gradients)
        for e in prof.events():
            shapes = e.input_shapes[1:3] if e.name in ("aten::addmm", "aten::baddbmm") else e.input_shapes[:2]
            if e.name in ("aten::mm", "aten::addmm"):
                (m, k), (_, n) = shapes
                flops, dims = 2 * m * k * n, " x ".join("T" if d == tokens and d not in weight_dims else str(d)
                                                for d in (m, k, n))
                key = f"{e.name.removeprefix('aten::')} {dims}"
            elif e.name in ("aten::bmm", "aten::baddbmm"):
                (b, m, k), (_, _, n) = shapes
                flops, key = 2 * b * m * k * n, "attention's bmm and baddbmm"
            else:
                continue
            row = out.setdefault(key, [0.0, 0.0, 0])
            row[0], row[1], row[2] = row[0] + e.self_cpu_time_total, row[1] + flops, row[2] + 1
    return out


def ceiling(examples: int, warm: int, steps: int) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    net, batches = sst2_minilm_batches(examples)
    if len(batches) < warm + steps:
        raise SystemExit(f"{examples} examples give {len(batches)} batches; --warm + --steps needs more")
    step = TrainingStep(net, class_loss)
    for batch, labels in batches[:warm]:
        step(batch, labels, clip_gradients)
    timed = batches[warm:warm + steps]
    t0 = time.perf_counter()
    for batch, labels in timed:
        step(batch, labels, clip_gradients)
    wall = (time.perf_counter() - t0) / steps
    with FlopCounterMode(display=False) as counter:  # the same batches again, counted, not timed
        for batch, labels in timed:
            step(batch, labels, clip_gradients)
    inside = in_step_rates(step, timed)  # and again, each multiply profiled
    step.close()
    flops = counter.get_total_flops() / steps
    rows = sum(b["input_ids"].numel() for b, _ in timed) // steps  # tokens per batch, padding included
    h, i = net.backbone.config.hidden_size, net.backbone.config.intermediate_size
    shapes = [(2048, 2048, 2048), (rows, h, h), (rows, h, i), (rows, i, h), (h, rows, i)]
    rates = best_rate(shapes, torch.bfloat16 if step.precision == "bf16" else torch.float32)
    peak = max(max(r.values()) for r in rates.values())
    floor = flops / (peak * 1e9)
    print(f"{machine()}; {steps} steps after {warm} ({step.precision}), batches of 32 real SST-2 sentences, "
          f"{rows} tokens per batch on average\n")
    print(f"| multiply (m x k x n), {step.precision} | torch.mm GFLOP/s | oneDNN GFLOP/s |")
    print("|---|---|---|")
    for (m, k, n), r in rates.items():
        print(f"| {m} x {k} x {n} | {r['mkl']:.1f} | {r['onednn']:.1f} |")
    print("\n| the step's multiplies (T: the batch's tokens) | calls per step | CPU ms per step | GFLOP/s |")
    print("|---|---|---|---|")
    for key, (us, f, calls) in sorted(inside.items(), key=lambda kv: -kv[1][0])[:12]:
        print(f"| {key} | {calls / steps:.1f} | {us / steps / 1e3:.1f} | {f / us / 1e3:.1f} |")
    print("\n| step ms | step GFLOP (multiplies) | step GFLOP/s | best multiply GFLOP/s | floor ms | ceiling |")
    print("|---|---|---|---|---|---|")
    print(f"| {1e3 * wall:.1f} | {flops / 1e9:.2f} | {flops / wall / 1e9:.1f} | {peak:.1f} | {1e3 * floor:.1f} | "
          f"{wall / floor:.2f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--tokens", type=int, default=24)
    p.add_argument("--steps", type=int, default=None, help="default: 6, or 40 with --steady")
    p.add_argument("--steady", action="store_true")
    p.add_argument("--ceiling", action="store_true", help="the most a step could speed up at the same arithmetic")
    p.add_argument("--sentences", type=int, default=2400)
    p.add_argument("--warm", type=int, help="default: 20, or 10 with --task qa")
    p.add_argument("--task", choices=["classify", "qa"], default="classify", help="with --steady")
    p.add_argument("--questions", type=int, default=600, help="SQuAD questions, with --task qa")
    a = p.parse_args()
    if a.ceiling:
        return ceiling(a.sentences, a.warm or 20, a.steps or 40)
    if a.steady:
        qa = a.task == "qa"
        return steady(a.task, a.questions if qa else a.sentences, a.warm or (10 if qa else 20),
                      a.steps or (20 if qa else 40))
    a.steps = a.steps or 6
    print(machine())
    print("| precision | run (s, incl. model loading) | matrix multiplies | optimizer | other |")
    print("|---|---|---|---|---|")
    runs = [profile(mode, a.batch, a.tokens, a.steps) for mode in dict.fromkeys(["fp32", resolve("auto", CPU)])]
    for r in runs:
        print(f"| {r['precision']} | {r['seconds']:.1f} | {100 * r['matmul_share']:.0f}% | "
              f"{100 * r['optimizer_share']:.0f}% | {100 * (1 - r['matmul_share'] - r['optimizer_share']):.0f}% |")
    for r in runs:
        print(f"\n{r['precision']}: the largest operators (share of CPU time)")
        print("; ".join(f"{name} {100 * share:.0f}%" for name, share, _ in r["top"]))


if __name__ == "__main__":
    main()
