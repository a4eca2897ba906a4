"""Exported models: the trained task's own class, running the exported file.

`load_exported(dir)` returns a TextClassifier or QuestionAnswerer whose runner is the
.onnx or .tflite file (ONNX Runtime or LiteRT), so tokenization, batching, top-k, QA
windows, n-best decoding and metrics are the very code the PyTorch model uses. Raw
strings in, labels or answers out; torch is not needed.
"""

from __future__ import annotations

from pathlib import Path

from textmaker.errors import TextmakerError
from textmaker.export import formats, signatures
from textmaker.io import read_json, recover
from textmaker.tasks.classifier import TextClassifier
from textmaker.tasks.question_answer import QuestionAnswerer
from textmaker.text.preprocessor import PREPROCESSORS

TASKS = {cls.task_name: cls for cls in (TextClassifier, QuestionAnswerer)}


def is_export_dir(directory: str | Path) -> bool:
    recover(directory)  # an export killed between its two renames left the previous one beside it
    return (Path(directory) / "metadata.json").is_file() and not (Path(directory) / "model.safetensors").is_file()


def load_exported(directory: str | Path, task: str | None = None, threads: int | None = None):
    """An export directory -> the task (TextClassifier or QuestionAnswerer) running its file."""
    directory = Path(directory)
    if not is_export_dir(directory):
        raise TextmakerError(f"{directory}: not an export directory (no metadata.json); export a model with "
                             f"`textmaker export`")
    meta = read_json(directory / "metadata.json")
    if meta.get("task") not in TASKS:
        raise TextmakerError(f"{directory}/metadata.json: unknown task {meta.get('task')!r}")
    if task is not None and meta["task"] != task:
        raise TextmakerError(f"{directory}: holds an exported {meta['task']} model, not a {task}")
    if "signature" not in meta:
        raise TextmakerError(f"{directory}: exported by textmaker 0.1, whose files name their inputs differently; "
                             f"export the model again")
    pre = meta["preprocessor"]
    preprocessor = PREPROCESSORS[pre["kind"]].load(pre, directory)
    runner = formats.runner(meta["format"], directory / meta["file"], signatures.from_metadata(meta), threads)
    if meta["task"] == TextClassifier.task_name:
        return TextClassifier(None, preprocessor, meta["label_names"], meta, runner=runner)
    return QuestionAnswerer(None, preprocessor, meta, runner=runner)


class ExportedModel:
    """`ExportedModel.load(dir)`: run an exported model with raw strings in."""

    load = staticmethod(load_exported)


def evaluate_exported(directory: str | Path, data, output_dir: str | Path | None = None) -> dict:
    """The same metrics as the trained model's evaluate(), computed on the exported file."""
    return load_exported(directory).evaluate(data, output_dir)
