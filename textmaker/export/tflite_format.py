"""TFLite (LiteRT) export with litert-torch, run by ai-edge-litert's Interpreter. No TensorFlow.

As the Model Makers did, the file has fixed shapes: one sequence of seq_len tokens.
Quantization is AI Edge Quantizer's, applied to the float file: float16 weights,
dynamic-range int8 (int8 weights, float activations quantized at run time), and
int8 (weights and activations of the fully-connected layers), calibrated on
representative rows.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from textmaker.batching import pad_batch
from textmaker.errors import TextmakerError
from textmaker.export.quantization import QuantizationConfig
from textmaker.export.quiet import quiet

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
SIGNATURE = "serving_default"


def require_tflite(converter: bool = True):
    """The extra's packages are present (found, not imported: importing litert_torch is slow and loud)."""
    needed = ["ai_edge_litert"] + (["litert_torch", "ai_edge_quantizer"] if converter else [])
    if any(importlib.util.find_spec(name) is None for name in needed):
        raise TextmakerError("TFLite export and the LiteRT runner need the tflite extra: pip install 'textmaker[tflite]'")


class _Positional(torch.nn.Module):
    """The network with named, int32 inputs: what an app hands a TFLite interpreter."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.network(input_ids.long(), attention_mask.long(), token_type_ids.long())


def _fixed(rows: Sequence[dict], pad_id: int, seq_len: int) -> list[dict[str, np.ndarray]]:
    return [{k: pad_batch([r], pad_id, seq_len)[k].numpy().astype(np.int32) for k in INPUTS} for r in rows]


def _import_litert_torch():
    """litert_torch, without the noise a user cannot act on: its rich-console stage log (the
    exporter prints its own summary), and the warnings of the torchao it imports (CUDA kernels a
    CPU wheel lacks, a deprecated pytree registration)."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    with quiet("torchao", "torch.utils._pytree"):
        import litert_torch
    return litert_torch


def export(network: torch.nn.Module, outputs: dict[str, bool], sample_rows: Sequence[dict], pad_id: int,
           path: Path, quantization: QuantizationConfig, seq_len: int) -> None:
    require_tflite()
    litert_torch = _import_litert_torch()

    module = _Positional(network.eval().to("cpu")).eval()
    sample = _fixed(sample_rows[:1], pad_id, seq_len)[0]
    args = tuple(torch.from_numpy(sample[k]) for k in INPUTS)
    fp32 = path.with_name("float32.tflite") if quantization.mode != "none" else path
    with quiet():
        litert_torch.convert(module, args).export(str(fp32))
    if quantization.mode == "none":
        return
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe

    qt = quantizer.Quantizer(str(fp32))
    if quantization.mode == "float16":
        # Every weight, the embedding tables included (most of a small BERT's size).
        qt.add_weight_only_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, 16,
                                  algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
        calibration = None
    elif quantization.mode == "dynamic":
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        calibration = None
    else:
        # int8 weights and activations for the fully-connected layers, where the compute is.
        # Softmax, LayerNorm and GELU stay float: AI Edge Quantizer's whole-model recipe
        # (static_wi8_ai8) lost 25 points on a tiny BERT, and int16 activations overflowed.
        qt.add_static_config(".*", qtyping.TFLOperationName.FULLY_CONNECTED, 8, 8)
        names = _signature_inputs(fp32)
        samples = [{names[k]: v for k, v in feeds.items()}
                   for feeds in _fixed(sample_rows[: quantization.calibration_samples], pad_id, seq_len)]
        with quiet():  # the interpreter's "preserve_all_tensors is for debugging"
            calibration = qt.calibrate({SIGNATURE: samples})
    with quiet():
        qt.quantize(calibration, enable_progress_report=False).export_model(str(path), overwrite=True)
    fp32.unlink()


def _signature_inputs(path: Path) -> dict[str, str]:
    """Our input names -> the signature's (litert-torch names them after forward's arguments, or args_N)."""
    from ai_edge_litert.interpreter import Interpreter

    names = list(Interpreter(model_path=str(path)).get_signature_list()[SIGNATURE]["inputs"])
    if set(INPUTS) <= set(names):
        return {k: k for k in INPUTS}
    return dict(zip(INPUTS, sorted(names, key=lambda n: int(n.rsplit("_", 1)[-1]))))


class TFLiteRunner:
    """Runs an exported .tflite file, one fixed-length sequence at a time."""

    def __init__(self, path: Path, threads: int | None = None):
        require_tflite(converter=False)
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        # The interpreter's default is one thread; ONNX Runtime's is every core. On 2 cores,
        # MiniLM at 128 tokens: 60-66 ms with one thread, 39 ms with two.
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 1)
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.names = _signature_inputs(path)
        details = self.runner.get_input_details()
        self.fixed_seq_len = int(details[self.names["input_ids"]]["shape"][1])
        self.output_names = sorted(self.runner.get_output_details())

    def __call__(self, batch: dict) -> list[np.ndarray]:
        rows = []
        for i in range(batch["input_ids"].shape[0]):
            feeds = {self.names[k]: batch[k][i:i + 1].numpy().astype(np.int32) for k in INPUTS}
            out = self.runner(**feeds)
            rows.append([out[n] for n in self.output_names])
        return [np.concatenate([r[j] for r in rows]).astype(np.float32) for j in range(len(self.output_names))]

    def describe(self) -> dict:
        def io(details):
            return [{"name": name, "shape": [int(d) for d in v["shape"]], "dtype": np.dtype(v["dtype"]).name}
                    for name, v in details.items()]

        return {"inputs": io(self.runner.get_input_details()), "outputs": io(self.runner.get_output_details())}
