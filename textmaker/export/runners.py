"""Running an exported file: ONNX Runtime or the LiteRT interpreter, no torch.

A runner takes a padded batch (NumPy) and returns the task's outputs as logits, the
contract of models.runner.TorchRunner, so a task holding one behaves as the trained
model does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path

import numpy as np

from textmaker.errors import TextmakerError
from textmaker.export.job import feeds, outputs_as_logits
from textmaker.export.quiet import quiet_native
from textmaker.export.signatures import Signature

SIGNATURE_KEY = "serving_default"  # the TFLite signature litert-torch writes


def require_onnx():
    if any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxruntime")):
        raise TextmakerError("ONNX export and the ONNX runner need the onnx extra: pip install 'textmaker[onnx]'")


def require_tflite(converter: bool = True):
    """The extra's packages are present (found, not imported: importing litert_torch is slow and loud)."""
    needed = ["ai_edge_litert"] + (["litert_torch", "ai_edge_quantizer"] if converter else [])
    if any(importlib.util.find_spec(name) is None for name in needed):
        raise TextmakerError("TFLite export and the LiteRT runner need the tflite extra: pip install 'textmaker[tflite]'")


class OnnxRunner:
    """An .onnx file on padded batches of any shape."""

    fixed_seq_len = None  # dynamic axes: batches keep their own padding

    def __init__(self, path: Path, signature: Signature, threads: int | None = None):
        require_onnx()
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.path, self.signature = path, signature
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: dict) -> list[np.ndarray]:
        out = self.session.run(list(self.signature.outputs), feeds(batch, self.signature, np.int64))
        return outputs_as_logits(out, self.signature)

    def describe(self) -> dict:
        def io(items):
            return [{"name": i.name, "shape": [d if isinstance(d, int) else str(d) for d in i.shape],
                     "dtype": i.type} for i in items]

        return {"inputs": io(self.session.get_inputs()), "outputs": io(self.session.get_outputs())}


class TFLiteRunner:
    """A .tflite file, one fixed-length sequence at a time, as an app runs it."""

    def __init__(self, path: Path, signature: Signature, threads: int | None = None):
        require_tflite(converter=False)
        from ai_edge_litert.interpreter import Interpreter

        self.path, self.signature = path, signature
        # The interpreter's default is one thread; ONNX Runtime's is every core. On 2 cores,
        # MiniLM at 128 tokens: 60-66 ms with one thread, 39 ms with two.
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 1)
        self.runner = self.interpreter.get_signature_runner(SIGNATURE_KEY)
        first = self.runner.get_input_details()[signature.names[0]]
        self.fixed_seq_len = int(first["shape"][1])
        self.started = False

    def __call__(self, batch: dict) -> list[np.ndarray]:
        inputs = feeds(batch, self.signature, np.int32)
        rows = []
        for i in range(len(batch["input_ids"])):
            # the first run applies the XNNPACK delegate, which announces itself on stderr
            with contextlib.nullcontext() if self.started else quiet_native():
                out = self.runner(**{name: v[i:i + 1] for name, v in inputs.items()})
            self.started = True
            rows.append([out[name] for name in self.signature.outputs])
        out = [np.concatenate([r[j] for r in rows]) for j in range(len(self.signature.outputs))]
        return outputs_as_logits(out, self.signature)

    def describe(self) -> dict:
        def io(details):
            return [{"name": name, "shape": [int(d) for d in v["shape"]], "dtype": np.dtype(v["dtype"]).name}
                    for name, v in details.items()]

        return {"inputs": io(self.runner.get_input_details()), "outputs": io(self.runner.get_output_details())}
