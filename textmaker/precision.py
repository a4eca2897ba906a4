"""Mixed precision where the hardware has it, found at run time, never assumed.

bf16 on CPUs with AMX or AVX-512 BF16 (the matrix units run bf16 several times faster than fp32)
and on GPUs with bf16; fp16 autocast with a gradient scaler on older GPUs; fp32 elsewhere. Asked
for explicitly, bf16 runs on any CPU and fp16 on CPUs with fp16 arithmetic (AVX512-FP16,
AMX-FP16): elsewhere torch emulates fp16, and a MiniLM training step took 21x as long as in fp32.
bf16 without its arithmetic is emulated too (16x on an AVX2-only CPU), but every CPU runs it
correctly, so it is allowed with a warning: tests and checks of the bf16 path run anywhere.

bf16 runs the network itself in bf16 (weights and activations; LayerNorm and softmax accumulate
in fp32 inside their kernels) while the optimizer updates fp32 master weights: autocast instead
re-casts every weight and most activations at every operation, and on a CPU those casts and the
fp32 element-wise work between matrix multiplies cost more than the multiplies (a MiniLM step
ran 1.4-1.6x faster). The master weights are what training returns, saves and exports, so a model
trained in bf16 is an fp32 model like any other.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from textmaker.errors import TextmakerError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BF16_UNITS = {"amx_bf16", "avx512_bf16"}

log = logging.getLogger(__name__)
_bf16_warned = False  # once a process: resolve() runs for training, evaluation and each prediction


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
    fast = sorted(cpu_flags() & {"amx_bf16", "amx_fp16", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx512f",
                                 "avx2"})
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
    flags = cpu_flags()
    bf16 = bool(flags & BF16_UNITS)
    if precision == "fp16" and not flags & {"avx512_fp16", "amx_fp16"}:
        raise TextmakerError("precision fp16 (--precision): this CPU has no fp16 arithmetic (AVX512-FP16 or "
                             "AMX-FP16) and runs it ~20x slower than fp32 (emulated); use "
                             f"{'bf16, ' if bf16 else ''}fp32 or auto")
    if precision == "auto":
        return "bf16" if bf16 else "fp32"
    if precision == "bf16" and not bf16:
        _warn_emulated_bf16()
    return precision


def _warn_emulated_bf16() -> None:
    global _bf16_warned
    if not _bf16_warned:
        _bf16_warned = True
        log.warning("precision bf16 (--precision): this CPU has no bf16 arithmetic (AVX-512 BF16 or AMX), so torch "
                    "emulates it (MiniLM trained 16x slower than in fp32 on an AVX2-only CPU); "
                    "auto picks fp32 here")


def autocast(precision: str, device: torch.device):
    """fp16 casts per operation; bf16 needs none (the network itself is bf16, see TrainingWeights)."""
    if precision != "fp16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16)


class TrainingWeights:
    """The weights the optimizer steps, and the ones the network computes with.

    Each parameter group's trainable weights live in one flat fp32 master buffer (the optimizer's
    parameter) with one flat fp32 gradient, so clipping, AdamW and the copies between precisions
    run once per group instead of once per tensor (105 in MiniLM). On a CPU these passes over the
    weights are bound by memory bandwidth: what pays is fewer passes, not fewer calls (see
    training.clip_gradients).

    fp32 and fp16 (autocast): the network's parameters are views into the masters. bf16: the
    network is cast to bf16 and its parameters are views into flat bf16 buffers; after each
    backward pass the bf16 gradients are copied (or, over accumulated micro-batches, added) into
    the fp32 master gradients, so accumulation loses nothing, and after each step the masters are
    copied back. `restore()` gives the network its own fp32 tensors again, holding the masters.
    """

    def __init__(self, model: torch.nn.Module, precision: str, groups: list[dict]):
        """groups: torch.optim-style parameter groups over the model's trainable parameters."""
        self.model = model
        self.bf16 = precision == "bf16"
        self.active = True  # until restore()
        names = {id(p): n for n, p in model.named_parameters()}
        with torch.no_grad():
            self.fp32 = {k: v.detach().clone() for k, v in model.state_dict().items()} if self.bf16 else {}
            if self.bf16:
                model.to(torch.bfloat16)
            params = dict(model.named_parameters())
            self.groups, self._network, self._views = [], [], []
            for group in groups:
                members = [(names[id(p)], params[names[id(p)]]) for p in group["params"]]
                if not members:
                    continue
                master = torch.nn.Parameter(torch.cat([(self.fp32[n] if self.bf16 else p.detach()).reshape(-1)
                                                       for n, p in members]))
                master.grad = torch.zeros_like(master)
                network = master.detach() if not self.bf16 else torch.empty_like(master, dtype=torch.bfloat16)
                offset = 0
                for n, p in members:
                    view = network[offset:offset + p.numel()].view_as(p)
                    if self.bf16:
                        view.copy_(p)
                        self.fp32[n] = master.detach()[offset:offset + p.numel()].view_as(p)
                    p.data = view
                    self._views.append((p, master.grad[offset:offset + p.numel()].view_as(p)))
                    offset += p.numel()
                self.groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": [master]})
                self._network.append(network)

    def masters(self) -> list[torch.nn.Parameter]:
        """The tensors the optimizer updates (one per parameter group), each with its gradient."""
        return [g["params"][0] for g in self.groups]

    def collect_grads(self, first: bool) -> None:
        """After a backward pass: the network's gradients into the masters' (the first micro-batch
        of an optimizer step replaces, later ones add; a weight without one counts as zero)."""
        with torch.no_grad():
            have = [(view, p.grad) for p, view in self._views if p.grad is not None]
            if first:
                if len(have) < len(self._views):
                    for m in self.masters():
                        m.grad.zero_()
                torch._foreach_copy_([v for v, _ in have], [g for _, g in have])
            elif have:
                torch._foreach_add_([v for v, _ in have], [g.to(v.dtype) for v, g in have])
            for p, _ in self._views:
                p.grad = None

    def publish(self) -> None:
        """After an optimizer step: the updated masters into the bf16 network."""
        if self.bf16:
            with torch.no_grad():
                for network, master in zip(self._network, self.masters()):
                    network.copy_(master)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A copy of the network's weights in fp32 on the CPU (the masters, when the network is bf16)."""
        source = self.fp32 if self.bf16 else self.model.state_dict()
        return {k: v.detach().to("cpu", copy=True) for k, v in source.items()}

    def restore(self) -> None:
        """The network back in fp32, each parameter its own tensor again, holding the masters."""
        if not self.active:
            return
        with torch.no_grad():
            if self.bf16:
                self.model.to(torch.float32)
                self.model.load_state_dict(self.fp32)
            else:
                for p, _ in self._views:
                    p.data = p.data.clone()
        self.groups, self._network, self._views = [], [], []
        self.active = False


def adamw(groups: list[dict], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """AdamW in one fused kernel where the device has it (else the multi-tensor one): the per-tensor
    loop of sqrt, div and lerp over 22.7M parameters took a third of a CPU training step."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, foreach=True)
