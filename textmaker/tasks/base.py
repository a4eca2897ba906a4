"""What every task shares: a readable save directory and loading it back.

A saved model is a directory a person can read:
  config.json        task, backbone shape, preprocessor and head settings
  model.safetensors  every weight (no pickle)
  vocab.txt          the tokenizer's vocabulary
plus what the task adds (labels.txt, metrics.json, history.json, plots).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from textmaker import __version__
from textmaker.errors import TextmakerError
from textmaker.io import atomic_directory, read_json, write_json
from textmaker.models import factory
from textmaker.text.preprocessor import PREPROCESSORS
from textmaker.training import default_device

TASK_COMMANDS = {"text_classifier": "TextClassifier / `textmaker classify`",
                 "question_answerer": "QuestionAnswerer / `textmaker qa`"}


class Task:
    task_name = ""

    def __init__(self, network: torch.nn.Module, preprocessor, config: dict):
        self.network = network
        self.preprocessor = preprocessor
        self.config = config  # the head and training settings saved in config.json
        self.device = default_device()
        self.network.to(self.device).eval()

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

    def _save_extra(self, directory: Path) -> None:
        """Task-specific files (labels, metrics, history, plots)."""

    # ---- loading ----

    @classmethod
    def read_config(cls, directory: str | Path) -> dict:
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
        task = config.get("task") if isinstance(config, dict) else None
        if task not in TASK_COMMANDS:
            raise TextmakerError(f"{directory}: not a textmaker model directory (config.json has no known task)")
        if task != cls.task_name:
            raise TextmakerError(f"{directory}: holds a {task} model, not a {cls.task_name}; "
                                 f"use {TASK_COMMANDS[task]}")
        return config

    @classmethod
    def _load_parts(cls, directory: str | Path) -> tuple[dict, torch.nn.Module, object, dict]:
        """-> (config, backbone with no weights yet, preprocessor, saved weights)."""
        directory = Path(directory)
        config = cls.read_config(directory)
        pre_cfg = config["preprocessor"]
        preprocessor = PREPROCESSORS[pre_cfg["kind"]].load(pre_cfg, directory)
        backbone = factory.from_spec(config["backbone"])
        return config, backbone, preprocessor, load_file(directory / "model.safetensors")

    @staticmethod
    def _load_weights(network: torch.nn.Module, state: dict, directory: Path) -> None:
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise TextmakerError(f"{directory}/model.safetensors does not match config.json ({first})") from None
