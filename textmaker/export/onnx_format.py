"""ONNX export and quantization (the file is run by runners.OnnxRunner).

Dynamic batch and sequence axes, so batches keep their own padding as in PyTorch.
Quantization uses onnxruntime's own tools: float16 conversion, dynamic int8, and
static int8 (QDQ) calibrated on representative rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from textmaker.batching import pad_batch
from textmaker.export.graph import ExportGraph
from textmaker.export.job import Job, feeds
from textmaker.export.quantization import QuantizationConfig
from textmaker.export.quiet import quiet
from textmaker.export.runners import require_onnx
from textmaker.export.signatures import Signature


def export(job: Job, path: Path) -> None:
    require_onnx()
    sig = job.signature
    graph = ExportGraph(job.network, sig, job.pad_id)
    batch = feeds(pad_batch(list(job.rows[:2]), job.pad_id), sig, np.int64)
    args = tuple(torch.from_numpy(batch[name]) for name in sig.names)
    fp32 = path.with_name("float32.onnx") if job.quantization.mode != "none" else path
    axes = {name: {0: "batch", 1: "sequence"} for name in sig.names}
    axes.update({name: {0: "batch", 1: "sequence"} if sig.per_token else {0: "batch"} for name in sig.outputs})
    with quiet():
        torch.onnx.export(graph, args, str(fp32), input_names=list(sig.names), output_names=list(sig.outputs),
                          dynamic_axes=axes, opset_version=17, dynamo=False, do_constant_folding=True)
    if job.quantization.mode == "none":
        return
    with quiet(""):  # onnxruntime's quantizer advises through the root logger ("consider pre-processing")
        _quantize(fp32, path, job.quantization, job.rows, job.pad_id, sig)
    fp32.unlink()


def _quantize(fp32: Path, path: Path, quantization: QuantizationConfig, sample_rows, pad_id: int,
              sig: Signature) -> None:
    if quantization.mode == "float16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
        onnx.save(model, str(path))
    elif quantization.mode == "dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Per-channel 7-bit weights: on 300 SST-2 sentences, 99.0% label agreement with PyTorch
        # against 97.7% for onnxruntime's defaults (per-tensor 8-bit), at the same size; 7 bits
        # also avoid the u8*s8 overflow of CPUs without VNNI.
        quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    else:
        _quantize_static(fp32, path, sample_rows[: quantization.calibration_samples], pad_id, sig)


def _quantize_static(fp32: Path, path: Path, rows: Sequence[dict], pad_id: int, sig: Signature) -> None:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    graph = onnx.load(str(fp32), load_external_data=False).graph

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([feeds(pad_batch(list(rows[i:i + 8]), pad_id), sig, np.int64)
                                 for i in range(0, len(rows), 8)])

        def get_next(self):
            return next(self.batches, None)

    # Measured on MiniLM / SST-2 dev (label agreement with PyTorch, batch-1 p50 on a CPU without
    # VNNI): every MatMul with symmetric int8 activations 91.2% and 57 ms; uint8 activations with
    # 7-bit per-channel weights 96.9% and 7.5 ms; then keeping the FFN down-projections float (their
    # input, the GELU output, has the outliers) 98.2%. Only MatMuls with a weight operand are
    # quantized: the attention products of two activations, LayerNorm, Softmax and GELU stay float.
    initializers = {t.name for t in graph.initializer}
    weight_matmuls = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in initializers
                      and not (n.name.endswith("/output/dense/MatMul") and "/attention/" not in n.name)]
    matmuls = path.with_name("static.onnx")
    quantize_static(str(fp32), str(matmuls), Reader(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul", "Gemm"], nodes_to_quantize=weight_matmuls, per_channel=True,
                    reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    # The embedding tables are most of a small BERT's bytes and do no arithmetic: int8 weights
    # read through a lookup (70 MB -> 34 MB on MiniLM, about half a point of agreement).
    quantize_dynamic(str(matmuls), str(path), weight_type=QuantType.QInt8, op_types_to_quantize=["Gather"])
    matmuls.unlink()
