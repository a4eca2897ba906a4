"""Knowledge distillation: a classifier learns from trained classifiers' probabilities too.

Each teacher (a trained TextClassifier: a fine-tuned MiniLM, say) labels every training text
once, before training; several teachers' probabilities are averaged, an ensemble's answer. The
student then minimises

    (1 - weight) * cross_entropy(labels) + weight * T^2 * KL(teacher_T || student_T)

where _T is a softmax at temperature T (Hinton et al., 2015). The T^2 keeps the soft term's
gradients at the hard term's scale as T grows. The student is any classifier textmaker builds:
the word-embedding baseline taught by MiniLM, or a MiniLM taught by an ensemble of MiniLMs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from textmaker.errors import TextmakerError
from textmaker.metrics import log_softmax

CHUNK = 4096  # texts per call, for the progress bar (each call still batches its texts by length)


@dataclass(frozen=True)
class Distillation:
    teachers: tuple  # trained TextClassifiers, with the student's label names
    weight: float = 0.5
    temperature: float = 2.0

    def __post_init__(self):
        """Each problem with the settings as one line naming the flag, before any teacher runs."""
        if not (isinstance(self.weight, (int, float)) and not isinstance(self.weight, bool)
                and 0 < self.weight <= 1):
            raise TextmakerError(f"distill_weight (--distill-weight) must be above 0 and at most 1, got "
                                 f"{self.weight!r}")
        if not (isinstance(self.temperature, (int, float)) and not isinstance(self.temperature, bool)
                and math.isfinite(self.temperature) and self.temperature > 0):
            raise TextmakerError(f"distill_temperature (--distill-temperature) must be a finite number above 0, "
                                 f"got {self.temperature!r}")
        if not self.teachers:
            raise TextmakerError("distillation needs at least one teacher (--teacher MODEL_DIR)")
        for i, t in enumerate(self.teachers):
            if not isinstance(getattr(t, "label_names", None), list) or not callable(getattr(t, "logits", None)):
                raise TextmakerError(f"teacher {i + 1} is a {type(t).__name__}, not a trained text classifier")

    def check_labels(self, label_names: Sequence[str]) -> None:
        for i, t in enumerate(self.teachers):
            if sorted(t.label_names) != sorted(label_names):
                raise TextmakerError(f"teacher {i + 1} ({t.config.get('base_model', '?')}) knows the labels "
                                     f"{t.label_names}, the training data has {list(label_names)}: a teacher must "
                                     f"have been trained on the same labels")

    def record(self) -> dict:
        """What config.json keeps about it."""
        return {"teachers": [t.config.get("base_model") for t in self.teachers], "weight": self.weight,
                "temperature": self.temperature}


def soft_targets(distillation: Distillation, texts: Sequence[str], label_names: Sequence[str],
                 precision: str = "auto", progress: bool = False) -> np.ndarray:
    """The teachers' averaged probabilities at the temperature, one row per text, columns in
    `label_names` order (a teacher's own order may differ). `precision` "auto" runs each teacher in
    bf16 where the hardware is fast at it: the same answers within noise, at 2-3x the speed. A
    teacher may be an export too (textmaker's ONNX or TFLite directory)."""
    from tqdm.auto import tqdm

    from textmaker import distributed

    texts = list(texts)
    total = np.zeros((len(texts), len(label_names)), dtype=np.float64)
    # minutes for a large training set: a bar, as training has (quiet when stderr is not a terminal)
    bar = tqdm(total=len(texts) * len(distillation.teachers), unit="text", desc="teachers labelling",
               disable=None if progress and distributed.is_main() else True, dynamic_ncols=True)
    for teacher in distillation.teachers:
        if teacher.network is not None:  # an export (ONNX, TFLite) computes as it was exported
            teacher = teacher.at_precision(precision)
        columns = [list(teacher.label_names).index(name) for name in label_names]
        for start in range(0, len(texts), CHUNK):
            logits = teacher.logits(texts[start:start + CHUNK]).astype(np.float64)
            total[start:start + CHUNK] += np.exp(log_softmax(logits[:, columns] / distillation.temperature))
            bar.update(len(logits))
    bar.close()
    return (total / len(distillation.teachers)).astype(np.float32)


def distillation_loss(logits, soft, temperature: float):
    """T^2 * KL(soft || softmax(logits / T)), averaged over the batch (torch tensors; logits fp32)."""
    import torch

    log_student = torch.log_softmax(logits / temperature, dim=-1)
    soft = soft.to(log_student.dtype)
    # 0 * log 0 is 0: a teacher certain to the last bit contributes no entropy term
    entropy_part = torch.where(soft > 0, soft * torch.log(soft.clamp_min(1e-30)), torch.zeros_like(soft))
    return (entropy_part - soft * log_student).sum(-1).mean() * temperature ** 2
