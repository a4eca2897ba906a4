"""The export formats: how to write one, and how to run one."""

from __future__ import annotations

from pathlib import Path

from textmaker.errors import TextmakerError

FORMATS = {"onnx": "model.onnx", "tflite": "model.tflite"}


def check(fmt: str) -> str:
    if fmt not in FORMATS:
        raise TextmakerError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def writer(fmt: str):
    check(fmt)
    if fmt == "onnx":
        from textmaker.export import onnx_format

        return onnx_format.export
    from textmaker.export import tflite_format

    return tflite_format.export


def runner(fmt: str, path: Path):
    check(fmt)
    if fmt == "onnx":
        from textmaker.export.onnx_format import OnnxRunner

        return OnnxRunner(path)
    from textmaker.export.tflite_format import TFLiteRunner

    return TFLiteRunner(path)
