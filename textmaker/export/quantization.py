"""How an exported model is quantized (TFLite Model Maker's QuantizationConfig, for PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass

from textmaker.errors import TextmakerError

MODES = ("none", "float16", "dynamic", "int8")


@dataclass(frozen=True)
class QuantizationConfig:
    """mode: "none" (float32), "float16" (weights and math in half precision),
    "dynamic" (int8 weights, activations quantized at run time), or "int8" (weights and
    activations int8, activation ranges calibrated on representative data)."""

    mode: str = "none"
    calibration_samples: int = 200  # representative rows used to calibrate "int8"

    def __post_init__(self):
        if self.mode not in MODES:
            raise TextmakerError(f"quantization {self.mode!r} is not one of {', '.join(MODES)}")

    @classmethod
    def for_float16(cls) -> "QuantizationConfig":
        return cls("float16")

    @classmethod
    def for_dynamic(cls) -> "QuantizationConfig":
        return cls("dynamic")

    @classmethod
    def for_int8(cls, calibration_samples: int = 200) -> "QuantizationConfig":
        return cls("int8", calibration_samples)

    @classmethod
    def of(cls, value: "QuantizationConfig | str | None") -> "QuantizationConfig":
        if isinstance(value, cls):
            return value
        return cls(value or "none")
