"""Exported models: the trained task's own code, with logits from the exported file.

An ExportedClassifier *is* a TextClassifier whose network is the .onnx (or .tflite)
file, so tokenization, batching, top-k, QA windows, n-best decoding and metrics are
the very code the PyTorch model uses. Raw strings in, labels or answers out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textmaker.errors import TextmakerError
from textmaker.io import read_json, read_lines
from textmaker.tasks.base import Task
from textmaker.tasks.classifier import TextClassifier
from textmaker.tasks.question_answer import QuestionAnswerer
from textmaker.text.preprocessor import PREPROCESSORS


class _Exported:
    runner = None
    metadata: dict = {}

    def _outputs(self, batch: dict, model=None) -> list[np.ndarray]:
        return self.runner(batch)

    def _run(self, rows, batch_size: int = 64, model=None, width=None):
        return Task._run(self, rows, batch_size, None, self.runner.fixed_seq_len)

    def save(self, directory):
        raise TextmakerError("an exported model is not re-saved: its export directory is the model")

    def export(self, *args, **kwargs):
        raise TextmakerError("export from the trained model directory, not from an export")


class ExportedClassifier(_Exported, TextClassifier):
    def __init__(self, runner, preprocessor, label_names, metadata: dict):
        TextClassifier.__init__(self, None, preprocessor, label_names, metadata)
        self.runner, self.metadata = runner, metadata


class ExportedQuestionAnswerer(_Exported, QuestionAnswerer):
    def __init__(self, runner, preprocessor, metadata: dict):
        QuestionAnswerer.__init__(self, None, preprocessor, metadata)
        self.runner, self.metadata = runner, metadata


def is_export_dir(directory: str | Path) -> bool:
    return (Path(directory) / "metadata.json").is_file() and not (Path(directory) / "model.safetensors").is_file()


def load_exported(directory: str | Path, task: str | None = None):
    """An export directory -> ExportedClassifier or ExportedQuestionAnswerer."""
    from textmaker.export import formats

    directory = Path(directory)
    if not is_export_dir(directory):
        raise TextmakerError(f"{directory}: not an export directory (no metadata.json); export a model with "
                             f"`textmaker export`")
    meta = read_json(directory / "metadata.json")
    if task is not None and meta.get("task") != task:
        raise TextmakerError(f"{directory}: holds an exported {meta.get('task')} model, not a {task}")
    pre = meta["preprocessor"]
    preprocessor = PREPROCESSORS[pre["kind"]].load(pre, directory)
    runner = formats.runner(meta["format"], directory / meta["file"])
    if meta["task"] == TextClassifier.task_name:
        return ExportedClassifier(runner, preprocessor, read_lines(directory / "labels.txt"), meta)
    return ExportedQuestionAnswerer(runner, preprocessor, meta)


class ExportedModel:
    """`ExportedModel.load(dir)`: run an exported model with raw strings in."""

    load = staticmethod(load_exported)


def evaluate_exported(directory: str | Path, data, output_dir: str | Path | None = None) -> dict:
    """The same metrics as the trained model's evaluate(), computed on the exported file."""
    return load_exported(directory).evaluate(data, output_dir)
