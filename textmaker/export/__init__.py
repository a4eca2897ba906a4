from textmaker.export.exported import ExportedModel, evaluate_exported, is_export_dir, load_exported
from textmaker.export.exporter import Tolerance, export
from textmaker.export.quantization import QuantizationConfig

__all__ = ["ExportedModel", "QuantizationConfig", "Tolerance", "evaluate_exported", "export", "is_export_dir",
           "load_exported"]
