"""The export formats: one table answers what file each writes, and how it is written and run."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from textmaker.errors import TextmakerError


@dataclass(frozen=True)
class Format:
    files: dict[str, str]  # quantization -> the file's path in the export directory
    writer: str  # module whose export(job, path) writes the file (imports torch and the converter)
    runner: str  # textmaker.export.runners class that runs it (no torch)
    hf_layout: bool  # config.json as transformers reads it beside the file

    def file(self, quantization: str) -> str:
        return self.files[quantization]


FORMATS = {
    # Optimum's and transformers.js' layout: onnx/ with transformers.js' names per dtype
    # ("q8", its default in browsers, is model_quantized.onnx).
    "onnx": Format({"none": "onnx/model.onnx", "float16": "onnx/model_fp16.onnx",
                    "dynamic": "onnx/model_quantized.onnx", "int8": "onnx/model_int8.onnx"},
                   "textmaker.export.onnx_format", "OnnxRunner", hf_layout=True),
    # MediaPipe Tasks and LiteRT take the one file; its metadata holds the tokenizer and labels.
    "tflite": Format(dict.fromkeys(("none", "float16", "dynamic", "int8"), "model.tflite"),
                     "textmaker.export.tflite_format", "TFLiteRunner", hf_layout=False),
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
