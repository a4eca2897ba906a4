"""TFLite (LiteRT) export with litert-torch and AI Edge Quantizer. No TensorFlow.

As the Model Makers' files, it has fixed shapes (one sequence of seq_len int32 tokens),
the input and output names MediaPipe and TFLite Task Library read (signatures.py), and
TFLite Model Metadata with the tokenizer and labels inside (tflite_metadata.py), so an
app's runtime loads it as it is. Quantization is AI Edge Quantizer's, applied to the
float file: float16 weights, dynamic-range int8 (int8 weights, float activations
quantized at run time) and int8 (weights and activations of the fully-connected
layers) calibrated on representative rows. The file is run by runners.TFLiteRunner.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from textmaker.batching import pad_batch
from textmaker.export.graph import ExportGraph
from textmaker.export.job import Job, feeds
from textmaker.export.quiet import quiet, quiet_native
from textmaker.export.runners import SIGNATURE_KEY, require_tflite
from textmaker.export.tflite_buffers import inline_buffers
from textmaker.export.tflite_metadata import add_metadata, require_mediapipe
from textmaker.io import write_bytes


def _import_litert_torch():
    """litert_torch, without the noise a user cannot act on: its rich-console stage log (the
    exporter prints its own summary), and the warnings of the torchao it imports (CUDA kernels a
    CPU wheel lacks, a deprecated pytree registration), and the native start-up notices that some
    CPUs get and others do not (oneDNN's, on AVX-512 and AMX machines)."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    with quiet("torchao", "torch.utils._pytree"), quiet_native():
        import litert_torch
    return litert_torch


def _fixed(job: Job, rows) -> list[dict[str, np.ndarray]]:
    return [feeds(pad_batch([r], job.pad_id, job.seq_len), job.signature, np.int32) for r in rows]


def export(job: Job, path: Path) -> None:
    require_tflite()
    require_mediapipe()
    litert_torch = _import_litert_torch()
    graph = ExportGraph(job.network, job.signature, job.pad_id).eval()
    sample = {name: torch.from_numpy(v) for name, v in _fixed(job, job.rows[:1])[0].items()}
    fp32 = path.with_name("float32.tflite")
    with quiet(), quiet_native():  # the converter's absl and MLIR notices
        litert_torch.convert(graph, sample_kwargs=sample).export(str(fp32))
    model = _quantize(fp32, job) if job.quantization.mode != "none" else fp32.read_bytes()
    fp32.unlink()
    write_bytes(path, add_metadata(inline_buffers(model), job))


def _quantize(fp32: Path, job: Job) -> bytes:
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe

    qt = quantizer.Quantizer(str(fp32))
    mode = job.quantization.mode
    calibration = None
    if mode == "float16":
        # Every weight, the embedding tables included (most of a small BERT's size).
        qt.add_weight_only_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, 16,
                                  algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
    elif mode == "dynamic":
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    else:
        # int8 weights and activations for the fully-connected layers, where the compute is.
        # Softmax, LayerNorm and GELU stay float: AI Edge Quantizer's whole-model recipe
        # (static_wi8_ai8) lost 25 points on a tiny BERT, and int16 activations overflowed.
        qt.add_static_config(".*", qtyping.TFLOperationName.FULLY_CONNECTED, 8, 8)
        samples = _fixed(job, job.rows[: job.quantization.calibration_samples])
        with quiet():  # the interpreter's "preserve_all_tensors is for debugging"
            calibration = qt.calibrate({SIGNATURE_KEY: samples})
    quantized = fp32.with_name(f"{mode}.tflite")
    with quiet(), quiet_native():
        qt.quantize(calibration, enable_progress_report=False).export_model(str(quantized), overwrite=True)
    model = quantized.read_bytes()
    quantized.unlink()
    return model
