"""A PyTorch network as a runner: padded NumPy batch in, float32 NumPy outputs out.

Tasks run every model through this one contract, so a trained model and an
exported file (textmaker.export's ONNX and LiteRT runners) are interchangeable.
"""

from __future__ import annotations

import numpy as np
import torch

from textmaker.training import default_device, to_device


class TorchRunner:
    fixed_seq_len = None  # batches keep their own padding

    def __init__(self, network: torch.nn.Module, device: torch.device | None = None):
        self.network = network
        self.device = device or default_device()

    def __call__(self, batch: dict) -> list[np.ndarray]:
        batch = to_device({k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}, self.device)
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.no_grad():
                out = self.network(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        finally:
            self.network.train(was_training)
        return [o.float().cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))]
