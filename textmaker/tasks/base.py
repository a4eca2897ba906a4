"""What every task shares: a readable save directory and loading it back.

A saved model is a directory a person can read:
  config.json        task, backbone shape, preprocessor and head settings
  model.safetensors  every weight (no pickle)
  vocab.txt          the tokenizer's vocabulary
plus what the task adds (labels.txt, metrics.json, history.json, plots).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from textmaker import __version__
from textmaker.batching import run_batches
from textmaker.errors import TextmakerError
from textmaker.io import atomic_directory, read_json, write_json
from textmaker.models import factory
from textmaker.text.preprocessor import PREPROCESSORS
from textmaker.training import default_device

TASK_COMMANDS = {"text_classifier": "TextClassifier / `textmaker classify`",
                 "question_answerer": "QuestionAnswerer / `textmaker qa`"}


class Task:
    task_name = ""

    def __init__(self, network: torch.nn.Module | None, preprocessor, config: dict):
        self.network = network  # None in an exported model, which runs its file instead
        self.preprocessor = preprocessor
        self.config = config  # the head and training settings saved in config.json
        self.device = default_device()
        if network is not None:
            network.to(self.device).eval()

    # ---- inference: one path for PyTorch and for exported runtimes ----

    def _outputs(self, batch: dict, model: torch.nn.Module | None = None) -> list[np.ndarray]:
        """The network's outputs for a padded batch, as float32 arrays."""
        model = model or self.network
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.no_grad():
            out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return [o.float().cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))]

    def _split_rows(self, outputs: list[np.ndarray], lengths: list[int]) -> list:
        """Batch outputs -> one entry per row (the task knows which outputs have a sequence axis)."""
        raise NotImplementedError

    def _run(self, rows: list[dict], batch_size: int = 64, model: torch.nn.Module | None = None,
             width: int | None = None) -> list:
        model = model or self.network
        was_training = model.training if model is not None else False
        if model is not None:
            model.eval()
        try:
            return run_batches(rows, self.preprocessor.pad_id, batch_size,
                               lambda b: self._split_rows(self._outputs(b, model), b["attention_mask"].sum(1).tolist()),
                               width)
        finally:
            if model is not None:
                model.train(was_training)

    # ---- saving ----

    def _config_json(self) -> dict:
        return {"textmaker_version": __version__, "task": self.task_name,
                "backbone": factory.backbone_spec(self.network.backbone),
                "preprocessor": self.preprocessor.config(), **self.config}

    def save(self, directory: str | Path) -> Path:
        """Write the model directory atomically: an interrupted save leaves the old one intact."""
        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            write_json(tmp / "config.json", self._config_json())
            state = {k: v.detach().contiguous().cpu() for k, v in self.network.state_dict().items()}
            save_file(state, tmp / "model.safetensors", metadata={"format": "pt", "task": self.task_name})
            self.preprocessor.save(tmp)
            self._save_extra(tmp)
        return directory

    def export(self, directory: str | Path, format: str = "onnx", quantization=None, representative_data=None,
               tolerance=None, verbose: bool = True) -> dict:
        """Write an exported model (ONNX or TFLite), verified against this one; returns its metadata.

        quantization: None/"none", "float16", "dynamic", "int8" or a QuantizationConfig.
        representative_data: labelled data to calibrate int8 and to verify on (else vocabulary text).
        """
        from textmaker.export.exporter import export

        return export(self, directory, format, quantization, representative_data, tolerance, verbose=verbose)

    def _save_extra(self, directory: Path) -> None:
        """Task-specific files (labels, metrics, history, plots)."""

    # ---- loading ----

    @classmethod
    def read_config(cls, directory: str | Path) -> dict:
        return read_model_config(directory, cls.task_name)

    @classmethod
    def _load_parts(cls, directory: Path) -> "SavedParts":
        """What every saved task holds; the task builds its head on the backbone and loads the weights."""
        config = cls.read_config(directory)
        pre_cfg = config["preprocessor"]
        extra = {k: read_json(directory / f"{k}.json") if (directory / f"{k}.json").is_file() else None
                 for k in ("history", "metrics")}
        return SavedParts(settings={k: v for k, v in config.items() if k not in _SAVE_ONLY_KEYS},
                          backbone=factory.from_spec(config["backbone"]),
                          preprocessor=PREPROCESSORS[pre_cfg["kind"]].load(pre_cfg, directory),
                          state=load_file(directory / "model.safetensors"),
                          history=extra["history"], metrics=extra["metrics"])

    @staticmethod
    def _load_weights(network: torch.nn.Module, state: dict, directory: Path) -> None:
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise TextmakerError(f"{directory}/model.safetensors does not match config.json ({first})") from None


# config.json keys written by Task.save itself, as opposed to the task's own settings.
_SAVE_ONLY_KEYS = ("textmaker_version", "task", "backbone", "preprocessor")


@dataclass
class SavedParts:
    settings: dict  # the task's own config.json settings (head, training, windows, ...)
    backbone: torch.nn.Module  # built from config.json, weights not loaded yet
    preprocessor: object
    state: dict  # model.safetensors
    history: list | None
    metrics: dict | None


def read_model_config(directory: str | Path, task: str | None = None) -> dict:
    """config.json of a trained model directory; with `task`, it must hold that task."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TextmakerError(f"{directory}: no such model directory")
    path = directory / "config.json"
    if not path.is_file() or not (directory / "model.safetensors").is_file():
        raise TextmakerError(f"{directory}: not a textmaker model directory (it needs config.json and "
                             f"model.safetensors); train one first")
    try:
        config = read_json(path)
    except ValueError as e:
        raise TextmakerError(f"{path}: not valid JSON ({e})") from None
    found = config.get("task") if isinstance(config, dict) else None
    if found not in TASK_COMMANDS:
        raise TextmakerError(f"{directory}: not a textmaker model directory (config.json has no known task)")
    if task is not None and found != task:
        raise TextmakerError(f"{directory}: holds a {found} model, not a {task}; use {TASK_COMMANDS[found]}")
    return config
