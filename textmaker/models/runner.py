"""A PyTorch network as a runner: padded NumPy batch in, float32 NumPy outputs out.

Tasks run every model through this one contract, so a trained model and an
exported file (textmaker.export's ONNX and LiteRT runners) are interchangeable.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from textmaker.precision import resolve
from textmaker.training import default_device, to_device

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchRunner:
    fixed_seq_len = None  # batches keep their own padding

    def __init__(self, network: torch.nn.Module, device: torch.device | None = None, precision: str | None = None):
        """precision: None computes with the network's weights as they are; "fp32", "bf16", "fp16" or
        "auto" (bf16 where the CPU or GPU runs it fast, see textmaker.precision) with a copy of them in
        that type, taken now: the network itself, what is saved and exported, stays as it is."""
        self.device = device or default_device()
        self.network = network.to(self.device)  # in place: the caller's module, on the device it runs on
        self.precision = None if precision is None else resolve(precision, self.device)
        self._compute = network
        dtype = _DTYPES.get(self.precision)
        if dtype is not None and next(network.parameters()).dtype != dtype:
            # A cast copy of the whole network, as bf16 training computes (textmaker.precision),
            # rather than autocast, which re-casts every weight at every call.
            self._compute = copy.deepcopy(network).to(device=self.device, dtype=dtype).eval()

    def __call__(self, batch: dict) -> list[np.ndarray]:
        batch = to_device({k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}, self.device)
        network = self._compute
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                out = network(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        finally:
            network.train(was_training)
        return [o.float().cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))]
