"""Mixed precision where the hardware has it, found at run time, never assumed.

bf16 on CPUs with AMX or AVX-512 BF16 (the matrix units run bf16 several times faster than fp32)
and on GPUs with bf16; fp16 autocast with a gradient scaler on older GPUs; fp32 elsewhere.

bf16 runs the network itself in bf16 (weights and activations; LayerNorm and softmax accumulate
in fp32 inside their kernels) while the optimizer updates fp32 master weights: autocast instead
re-casts every weight and most activations at every operation, and on a CPU those casts and the
fp32 element-wise work between matrix multiplies cost more than the multiplies (a MiniLM step
ran 1.4-1.6x faster). The master weights are what training returns, saves and exports, so a model
trained in bf16 is an fp32 model like any other.
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
    """fp16 casts per operation; bf16 needs none (the network itself is bf16, see TrainingWeights)."""
    if precision != "fp16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16)


class TrainingWeights:
    """The weights the optimizer steps, and the ones the network computes with.

    fp32 and fp16: the same tensors. bf16: the network is cast to bf16 and the optimizer holds fp32
    masters; after each backward pass the bf16 gradients are summed into the masters' (in fp32, so
    accumulation over micro-batches loses nothing), and after each step the masters are copied
    back. `restore()` puts the fp32 masters back into the network.
    """

    def __init__(self, model: torch.nn.Module, precision: str):
        self.model = model
        self.bf16 = precision == "bf16"
        named = list(model.named_parameters())
        if self.bf16:
            self.fp32 = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.masters = {n: torch.nn.Parameter(self.fp32[n], requires_grad=True) for n, p in named if p.requires_grad}
            model.to(torch.bfloat16)
            self.pairs = [(self.masters[n], p) for n, p in named if p.requires_grad]
        else:
            self.masters = {n: p for n, p in named if p.requires_grad}

    def named_trainable(self) -> list[tuple[str, torch.nn.Parameter]]:
        """(name, tensor the optimizer updates) for each trainable weight."""
        return list(self.masters.items())

    def collect_grads(self, first: bool) -> None:
        """After a backward pass: the network's bf16 gradients into the masters (the first of a group
        replaces, later ones add)."""
        if not self.bf16:
            return
        for master, p in self.pairs:
            if p.grad is None:
                continue
            if first or master.grad is None:
                master.grad = p.grad.float()
            else:
                master.grad.add_(p.grad)
            p.grad = None

    def publish(self) -> None:
        """After an optimizer step: the updated masters into the bf16 network."""
        if self.bf16:
            with torch.no_grad():
                torch._foreach_copy_([p for _, p in self.pairs], [m for m, _ in self.pairs])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The network's weights in fp32 (the masters, when the network is bf16)."""
        return dict(self.fp32) if self.bf16 else self.model.state_dict()

    def restore(self) -> None:
        """The network back in fp32, holding the masters."""
        if self.bf16:
            self.model.to(torch.float32)
            self.model.load_state_dict(self.fp32)
            self.bf16 = False


def adamw(groups: list[dict], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """AdamW in one fused kernel where the device has it (else the multi-tensor one): the per-tensor
    loop of sqrt, div and lerp over 22.7M parameters took a third of a CPU training step."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, foreach=True)
