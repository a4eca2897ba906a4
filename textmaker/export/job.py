"""One export's inputs, and the feeds and outputs every exported runtime shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from textmaker.export.quantization import QuantizationConfig
from textmaker.export.signatures import Signature


@dataclass
class Job:
    """What a format's writer needs to write one file."""

    task: str  # "text_classifier" or "question_answerer"
    network: object  # the trained torch module
    signature: Signature
    rows: Sequence[dict]  # model input rows of real text: the first calibrates int8
    pad_id: int
    seq_len: int
    quantization: QuantizationConfig
    directory: Path  # the export directory being written: vocab.txt and labels.txt are already in it


def feeds(batch: dict, signature: Signature, dtype) -> dict[str, np.ndarray]:
    """A padded batch -> the file's named inputs."""
    return {name: np.ascontiguousarray(batch[key], dtype=dtype) for name, key in signature.inputs.items()}


def outputs_as_logits(outputs: Sequence[np.ndarray], signature: Signature) -> list[np.ndarray]:
    """The file's outputs as the task reads them: logits (a probability output becomes log-probabilities,
    which give the same softmax and the same argmax)."""
    out = [np.asarray(o, dtype=np.float32) for o in outputs]
    if signature.probabilities:
        out = [np.log(np.maximum(o, np.float32(1e-30))) for o in out]
    return out
