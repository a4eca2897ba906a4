"""What every task shares: a runner that computes its outputs, a readable save directory, loading.

A task runs its model through a *runner*: padded NumPy batch in, float32 NumPy
outputs out. A trained task's runner is its PyTorch network (models.runner);
an exported one's is an ONNX Runtime or LiteRT session over the exported file
(textmaker.export builds those). Either way it is the same class, so tokenization,
windows, decoding and metrics are one piece of code; nothing here imports torch
until a network is trained, saved or loaded.

A saved model is a directory a person can read:
  config.json                 task, backbone shape, preprocessor and head settings
  model.safetensors           every weight (no pickle)
  vocab.txt                   the tokenizer's vocabulary
  verification_sample.jsonl   real labelled examples an export is checked on
plus what the task adds (labels.txt, metrics.json, history.json, plots).
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from textmaker import __version__, distributed, presets
from textmaker.batching import run_batches
from textmaker.errors import TextmakerError
from textmaker.tasks import hf_layout
from textmaker.io import atomic_directory, check_output, output_lock, read_json, recover, write_json, write_text
from textmaker.text.preprocessor import PREPROCESSORS

TASK_COMMANDS = {"text_classifier": "TextClassifier / `textmaker classify`",
                 "question_answerer": "QuestionAnswerer / `textmaker qa`"}
SAMPLE_FILE = "verification_sample.jsonl"


class Task:
    task_name = ""
    # The held-out score (higher is better) that ranks models of the task: training's best point,
    # average's check.
    key_metric = ""

    def __init__(self, network, preprocessor, config: dict, runner=None, verification_sample: list[dict] | None = None,
                 history: list[dict] | None = None, metrics: dict | None = None):
        """network: the PyTorch module (None for an exported model, which brings its `runner`)."""
        self.network = network
        self.preprocessor = preprocessor
        self.config = config  # the head and training settings saved in config.json
        self.history = history or []  # the training history (history.json)
        self.metrics = metrics or {}  # validation metrics from training (metrics.json)
        if runner is None:
            from textmaker.models.runner import TorchRunner

            runner = TorchRunner(network)
            network.eval()
        self.runner = runner
        # Real examples held back from training (validation data, or a held-out slice), kept with
        # the model so that an export is checked on text like the app's, not on made-up text.
        self.verification_sample = verification_sample

    def _require_network(self, action: str):
        if self.network is None:
            raise TextmakerError(f"this model runs an exported file; {action} the trained model directory instead")
        return self.network

    # ---- inference: one path for PyTorch and for exported runtimes ----

    def at_precision(self, precision: str) -> "Task":
        """This model computing its predictions in `precision`: "fp32" (how it was trained and is
        saved; exports are checked against it), "bf16", "fp16" (GPUs, CPUs with AVX512-FP16) or "auto"
        (bf16 where the CPU or GPU runs it fast, else fp32). A new task sharing the model; this one is
        unchanged."""
        from textmaker.models.runner import TorchRunner

        if self.network is None:
            raise TextmakerError("precision (--precision) applies to a trained model directory; an export "
                                 "computes in the types it was exported with (--quantization)")
        twin = copy.copy(self)
        twin.runner = TorchRunner(self.network, self.runner.device, precision)
        return twin

    @classmethod
    def average(cls, models: Sequence["Task"], names: Sequence[str] | None = None, check=None,
                greedy: bool = False) -> "Task":
        """One model whose weights are the mean of several trained models' (a "model soup",
        Wortsman et al., 2022): the size and speed of one, saved and exported like any other.

        The members must be one architecture fine-tuned from the same pre-trained encoder, with the
        same tokenizer and labels: several seeds of one training command, say, run one after the
        other or on several machines at once (`create_averaged` trains them). Fine-tuning moves a
        pre-trained encoder little, so the runs land near each other and their mean is a model too,
        on SST-2 better than each; where training moves the encoder further (SQuAD, every layer
        trained) it was worse (benchmarks/RESULTS.md): score it on held-out data. `names` (the model
        directories, say), one per model, label the errors and config.json's record of the members.
        The first member gives the inference settings and the verification sample (held out of its
        own training only); history and validation metrics are left out (evaluate the average on
        held-out data).

        check: held-out labelled data (a dataset of the task) on which every member and the average
        are scored (`key_metric`); the scores go into config.json ("averaged_check"), and an average
        scoring below its best member is refused, naming that member. Not the data you report on:
        the check chooses between models.
        greedy: with `check`, instead of refusing, the "greedy soup": the members best first, each
        kept only if the average with it scores at least as well as without; never below the best
        member on the check data, and that member alone where no average helps."""
        from textmaker.tasks import averaging

        return averaging.average(cls, models, names, check, greedy)

    @classmethod
    def create_averaged(cls, train_data, validation_data=None, model=None, *, seeds: Sequence[int],
                        members_dir: str | Path | None = None, resume: bool = False, **options) -> "Task":
        """Train one model per seed with `create` (the same data and options) and return their
        average (`average`): with validation data, the greedy soup checked on it, else the mean of
        all. members_dir: each member is saved there as seedS as it finishes (its checkpoints
        under seedS/checkpoints while it trains); with resume=True, finished members are loaded
        and an interrupted one continues from its checkpoints. On SST-2, three seeds averaged
        scored 90.25-90.60% (three trios) where single runs averaged 89.77% (benchmarks/RESULTS.md)."""
        from textmaker.tasks import averaging

        if model is not None:
            options["model"] = model
        return averaging.train_seeds(cls, train_data, validation_data, seeds, members_dir, resume, options)

    def _split_rows(self, outputs: list, lengths: list[int]) -> list:
        """Batch outputs -> one entry per row (the task knows which outputs have a sequence axis)."""
        raise NotImplementedError

    def _run(self, rows: list[dict], batch_size: int = 64, runner=None) -> list:
        runner = runner or self.runner
        return run_batches(rows, self.preprocessor.pad_id, batch_size,
                           lambda b: self._split_rows(runner(b), b["attention_mask"].sum(1).tolist()),
                           runner.fixed_seq_len)

    # ---- saving ----

    def config_json(self) -> dict:
        """config.json: transformers' keys for the model, textmaker's settings beside them."""
        from textmaker.models import factory

        settings = {"textmaker_version": __version__, "task": self.task_name,
                    "preprocessor": self.preprocessor.config(), **self.config}
        return hf_layout.config_json(self.task_name, factory.backbone_spec(self.network.backbone), settings,
                                     getattr(self, "label_names", None))

    def _state_to_save(self, network) -> dict:
        """The weights under transformers' names (bert.*, classifier.*, qa_outputs.*) for a BERT model."""
        state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
        return hf_layout.to_hf_names(state, bert=self.preprocessor.kind == "wordpiece")

    def save(self, directory: str | Path, keep: Sequence[str] = ()) -> Path:
        """Write the model directory atomically: an interrupted save leaves the old one intact.
        keep: entries of the directory already there that stay (create_averaged's "members")."""
        from safetensors.torch import save_file

        network = self._require_network("save")
        if not distributed.is_main():  # under torchrun, rank 0 writes; the others hold the same model
            return Path(directory)
        directory = check_output(directory, overwrite=True, flag="save directory")
        with output_lock(directory), atomic_directory(directory, keep) as tmp:
            write_json(tmp / "config.json", self.config_json())
            save_file(self._state_to_save(network), tmp / "model.safetensors",
                      metadata={"format": "pt", "task": self.task_name})
            self.preprocessor.save(tmp)
            if self.verification_sample:
                write_text(tmp / SAMPLE_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                      for r in self.verification_sample))
            self._save_extra(tmp)
        return directory

    def _save_extra(self, directory: Path) -> None:
        """Task-specific files (labels, metrics, history, plots)."""

    # ---- loading ----

    @classmethod
    def read_config(cls, directory: str | Path) -> dict:
        return read_model_config(directory, cls.task_name)

    @classmethod
    def _load_parts(cls, directory: Path) -> "SavedParts":
        """What every saved task holds; the task builds its head on the backbone and loads the weights.
        A damaged config.json is one line naming it, before anything is allocated."""
        from textmaker.models import factory

        config = cls.read_config(directory)
        with settings_of(directory):
            if "task" not in config:  # fine-tuned with transformers: textmaker's settings from its files
                config = {**config, **cls._settings_from_hf(config, directory)}
            pre_cfg = config["preprocessor"]
            preprocessor = PREPROCESSORS[pre_cfg["kind"]].load(pre_cfg, directory)
            settings = {k: config[k] for k in SETTINGS_KEYS if k in config}
            backbone = factory.from_spec(hf_layout.backbone_of(config), str(directory / "config.json"))
        extra = {k: read_json(directory / f"{k}.json") if (directory / f"{k}.json").is_file() else None
                 for k in ("history", "metrics")}
        return SavedParts(settings=settings, backbone=backbone, preprocessor=preprocessor,
                          history=extra["history"], metrics=extra["metrics"],
                          verification_sample=read_verification_sample(directory))

    @classmethod
    def _settings_from_hf(cls, config: dict, directory: Path) -> dict:
        """textmaker's settings for a directory fine-tuned with transformers (the task's defaults)."""
        raise NotImplementedError

    @staticmethod
    def _hf_preprocessor(config: dict, directory: Path, default_seq_len: int) -> dict:
        """The preprocessor of a transformers directory: its tokenizer_config's casing, the task's seq_len."""
        tok = read_json(directory / "tokenizer_config.json") if (directory / "tokenizer_config.json").is_file() else {}
        return {"kind": "wordpiece", "lowercase": bool(tok.get("do_lower_case", True)),
                "strip_accents": tok.get("strip_accents"),
                "seq_len": min(default_seq_len, int(config.get("max_position_embeddings", 512)))}

    @staticmethod
    def _load_weights(network, directory: Path, optional: tuple[str, ...] = ()) -> None:
        """The weights into the network built from config.json, under textmaker's or transformers'
        names; safetensors shapes are compared from the file's header before its data is read.
        optional: name prefixes the file may lack (the pooler a question answerer does not use)."""
        from textmaker.models.bert import load_weights, read_safetensors

        own = {k: v.shape for k, v in network.state_dict().items()}
        path = directory / "model.safetensors"
        if path.is_file():
            state = read_safetensors(path, {**own, **hf_layout.to_hf_names(own, bert=True)})
        else:
            state = load_weights(directory)  # a transformers directory with a weights-only pytorch_model.bin
            path = directory / "pytorch_model.bin"
        state = hf_layout.from_hf_names(state)
        missing = sorted(k for k in set(own) - set(state) if not k.startswith(optional))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise TextmakerError(f"{path}: does not match config.json (missing {missing[:3]}, unexpected "
                                 f"{unexpected[:3]}); the two files do not belong together")
        network.load_state_dict(state, strict=False)


def keep_pretrained(backbone, preset: dict, train_cfg, train_word_embeddings: bool | None,
                    whole_encoder: bool = False) -> None:
    """Freeze what fine-tuning keeps as pre-trained and record it in `train_cfg`: the whole encoder
    (`whole_encoder`: the head alone trains), or for a BERT encoder the bottom
    `train_cfg.frozen_layers` layers with the embeddings, else the word-embedding table unless it
    trains (presets.trains_word_embeddings)."""
    bert = preset["kind"] == "bert"
    if whole_encoder:
        for p in backbone.parameters():
            p.requires_grad_(False)
        if bert:
            train_cfg.train_word_embeddings = False
            train_cfg.frozen_layers = len(backbone.encoder.layer)
        return
    if bert:
        train_cfg.train_word_embeddings = presets.trains_word_embeddings(preset, train_word_embeddings) \
            and not train_cfg.frozen_layers
        backbone.freeze(train_cfg.frozen_layers, word_embeddings=not train_cfg.train_word_embeddings)


@contextlib.contextmanager
def settings_of(directory: Path):
    """Reading a saved model's settings: a missing or malformed one is one line naming config.json."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        if isinstance(e, TextmakerError):
            raise
        raise TextmakerError(f"{directory / 'config.json'}: a required setting is missing or malformed "
                             f"({type(e).__name__}: {e}); the file is damaged: save or train the model again") from None


# The tasks' own config.json settings (the rest is the encoder's shape and transformers' keys).
SETTINGS_KEYS = ("base_model", "label_names", "head", "freeze_encoder", "training", "verification_sample",
                 "windows", "decoding", "version_2_with_negative", "averaged_from", "averaged_check", "member_recipe")


@dataclass
class SavedParts:
    settings: dict  # the task's own config.json settings (head, training, windows, ...)
    backbone: object  # a torch module built from config.json, weights not loaded yet
    preprocessor: object
    history: list | None
    metrics: dict | None
    verification_sample: list[dict] | None


def read_verification_sample(directory: Path) -> list[dict] | None:
    path = Path(directory) / SAMPLE_FILE
    if not path.is_file():
        return None  # saved by textmaker 0.1, or trained without data to spare
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                records.append(json.loads(line))
            except ValueError as e:
                raise TextmakerError(f"{path} line {n}: not valid JSON ({e}); delete the file to export "
                                     f"without it") from None
    return records


def read_model_config(directory: str | Path, task: str | None = None) -> dict:
    """config.json of a trained model directory; with `task`, it must hold that task."""
    directory = Path(directory)
    recover(directory)  # a save killed between its two renames left the previous model beside it
    if not directory.is_dir():
        raise TextmakerError(f"{directory}: no such model directory")
    path = directory / "config.json"
    weights = (directory / "model.safetensors").is_file() or (directory / "pytorch_model.bin").is_file()
    if not path.is_file() or not weights:
        raise TextmakerError(f"{directory}: not a textmaker model directory (it needs config.json and model.safetensors); "
                             f"train one first")
    try:
        config = read_json(path)
    except ValueError as e:
        raise TextmakerError(f"{path}: not valid JSON ({e})") from None
    found = hf_layout.task_of(config) if isinstance(config, dict) else None
    if found not in TASK_COMMANDS:
        raise TextmakerError(f"{directory}: not a textmaker model directory (config.json has no known task, nor a "
                             f"BertForSequenceClassification or BertForQuestionAnswering architecture)")
    if task is not None and found != task:
        raise TextmakerError(f"{directory}: holds a {found} model, not a {task}; use {TASK_COMMANDS[found]}")
    return config

