"""Mixed precision where the hardware has it, found at run time, never assumed.

bf16 autocast on CPUs with AMX or AVX-512 BF16 (the matrix units run bf16 several times faster
than fp32) and on GPUs with bf16; fp16 with a gradient scaler on older GPUs; fp32 elsewhere.
Weights and the optimizer stay fp32 (autocast casts per operation), so a model trained in bf16
saves, loads and exports as any other.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from textmaker.errors import TextmakerError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def hardware(device: torch.device) -> str:
    """What the choice was made on, for the training history."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    fast = sorted(cpu_flags() & {"amx_bf16", "avx512_bf16", "avx512_vnni", "avx512f", "avx2"})
    return f"CPU ({' '.join(fast) or 'no AVX2'})"


def resolve(precision: str, device: torch.device) -> str:
    """"auto" -> what the device does fast; an explicit choice the device cannot do is an error."""
    if precision not in PRECISIONS:
        raise TextmakerError(f"precision (--precision) must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return "bf16" if bf16 else "fp16"
        if precision == "bf16" and not bf16:
            raise TextmakerError("precision bf16 (--precision): this GPU has no bf16; use fp16 or auto")
        return precision
    if precision == "fp16":
        raise TextmakerError("precision fp16 (--precision) is for GPUs; on a CPU use bf16, fp32 or auto")
    if precision == "auto":
        return "bf16" if cpu_flags() & {"amx_bf16", "avx512_bf16"} else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def adamw(groups: list[dict], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """AdamW in one fused kernel where the device has it (else the multi-tensor one): the per-tensor
    loop of sqrt, div and lerp over 22.7M parameters took a third of a CPU training step."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, foreach=True)
