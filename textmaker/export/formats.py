"""The export formats: one table answers what file each writes, and how it is written and run."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from textmaker.errors import TextmakerError


@dataclass(frozen=True)
class Format:
    file: str
    writer: str  # module whose export(job, path) writes the file (imports torch and the converter)
    runner: str  # textmaker.export.runners class that runs it (no torch)


FORMATS = {
    "onnx": Format("model.onnx", "textmaker.export.onnx_format", "OnnxRunner"),
    "tflite": Format("model.tflite", "textmaker.export.tflite_format", "TFLiteRunner"),
}


def check(fmt: str) -> Format:
    if fmt not in FORMATS:
        raise TextmakerError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def write(fmt: str, job, path) -> None:
    importlib.import_module(check(fmt).writer).export(job, path)


def runner(fmt: str, path, signature, threads: int | None = None):
    from textmaker.export import runners

    return getattr(runners, check(fmt).runner)(path, signature, threads)
