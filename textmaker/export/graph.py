"""The trained network wrapped to take and give exactly what an export signature names."""

from __future__ import annotations

import copy

import torch
from torch import nn

from textmaker.export.signatures import Signature


class ExportGraph(nn.Module):
    """Named inputs (any integer type) in, named outputs out, as `signature` declares."""

    def __init__(self, network: nn.Module, signature: Signature, pad_id: int):
        super().__init__()
        # A CPU copy in eval mode: converters trace it, and the task's own network keeps its device
        # and mode whatever they do.
        self.network = copy.deepcopy(network).to("cpu").eval()
        self.signature, self.pad_id = signature, pad_id

    def forward(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        named = {**dict(zip(self.signature.names, args)), **kwargs}
        feeds = {key: named[name].long() for name, key in self.signature.inputs.items()}
        ids = feeds["input_ids"]
        mask = feeds.get("attention_mask", (ids != self.pad_id).long())
        types = feeds.get("token_type_ids", torch.zeros_like(ids))
        out = self.network(ids, mask, types)
        out = out if isinstance(out, tuple) else (out,)
        if self.signature.probabilities:
            out = tuple(torch.softmax(o, -1) for o in out)
        return dict(zip(self.signature.outputs, out))
