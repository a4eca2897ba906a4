"""TextClassifier: create, fit, evaluate, predict, save, load.

The task adds only its head (pooled output -> dropout -> dense), its rows
(token ids + label id) and its metrics; tokenizer, backbone and training loop
are the shared ones. torch is imported only to train, save or load a network:
an exported classifier runs without it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from textmaker import presets
from textmaker.data.text_dataset import TextDataset
from textmaker.errors import TextmakerError
from textmaker.io import read_lines, write_json, write_lines
from textmaker.metrics import classification_report, cross_entropy, softmax
from textmaker.options import check_seq_len, check_training, positive_int
from textmaker.plots import plot_confusion_matrix, plot_history
from textmaker.presets import DEFAULT_PRESET
from textmaker.tasks import hf_layout
from textmaker.tasks.base import Task, keep_pretrained, settings_of
from textmaker.text.words import SPECIAL_TOKENS

if TYPE_CHECKING:
    from textmaker.training import TrainingConfig

log = logging.getLogger(__name__)

# Real examples kept in the model directory for checking exports (Task.verification_sample).
SAMPLE_SIZE = 500
HOLD_OUT = 200  # held out of training for that when there is no validation data

# BertClassifierSpec's defaults for BERT encoders, MediaPipe's for the word-embedding
# baseline; a preset's own "defaults" override them.
DEFAULTS = {
    "bert": {"seq_len": 128, "dropout": 0.1, "learning_rate": 3e-5, "batch_size": 32, "epochs": 3, "frozen_layers": 0},
    "awe": {"seq_len": 256, "dropout": 0.2, "learning_rate": 1e-2, "batch_size": 32, "epochs": 10, "frozen_layers": 0},
}


class Prediction(NamedTuple):
    label: str
    score: float


class TextClassifier(Task):
    task_name = "text_classifier"
    key_metric = "accuracy"

    def __init__(self, network, preprocessor, label_names: Sequence[str], config: dict,
                 history: list[dict] | None = None, metrics: dict | None = None, runner=None,
                 verification_sample: list[dict] | None = None):
        super().__init__(network, preprocessor, config, runner, verification_sample, history, metrics)
        self.label_names = list(label_names)

    # ---- training ----

    @classmethod
    def create(cls, train_data: TextDataset, validation_data: TextDataset | None = None,
               model: str | Path = DEFAULT_PRESET, *, epochs: int | None = None, batch_size: int | None = None,
               learning_rate: float | None = None, seq_len: int | None = None, dropout: float | None = None,
               freeze_encoder: bool = False, class_weights: str | Sequence[float] | None = None,
               early_stopping_patience: int | None = None, seed: int = 0, vocab_size: int = 10000,
               wordvec_dim: int = 16, checkpoint_dir: str | Path | None = None, resume: bool = False,
               progress: bool = True, precision: str = "auto",
               gradient_accumulation_steps: int = 1, max_steps: int | None = None,
               train_word_embeddings: bool | None = None, eval_every_steps: int | None = None,
               frozen_layers: int | None = None) -> "TextClassifier":
        """Build a classifier on `model` (a preset name or a BERT directory) and train it.

        class_weights: None, "balanced" (inverse class frequency), or one weight per label.
        checkpoint_dir: where each epoch's state is kept; with resume=True, training continues from it.
        Without validation data, 200 examples (at most a tenth) are held out of training to check
        exports on; the model directory keeps up to 500 validation examples for that.
        train_word_embeddings: None keeps a pre-trained BERT's word-embedding table as it is (see
        presets.trains_word_embeddings); True fine-tunes it too.
        frozen_layers: how many bottom encoder layers, with the embeddings, are kept as pre-trained
        (None: the preset's choice, 1 for MiniLM; 0 fine-tunes every layer).
        """
        import torch

        from textmaker.models import factory
        from textmaker.models.heads import SequenceClassifier
        from textmaker.training import TrainingConfig

        if len(train_data.label_names) < 2 or len([n for n in train_data.class_counts().values() if n]) < 2:
            raise TextmakerError(f"{train_data.source}: only one class ({train_data.labels[0]!r}) in the training "
                                 f"data; a classifier needs examples of at least two")
        check_training(epochs, batch_size, learning_rate, dropout, early_stopping_patience, seed=seed)
        positive_int("gradient_accumulation_steps", gradient_accumulation_steps)
        positive_int("max_steps", max_steps)
        positive_int("eval_every_steps", eval_every_steps)
        preset = presets.resolve(model)
        check_seq_len(seq_len, preset["kind"], presets.max_positions(preset))
        positive_int("vocab_size", vocab_size, len(SPECIAL_TOKENS) + 1)
        positive_int("wordvec_dim", wordvec_dim)
        train_data, sample, origin = _verification_sample(train_data, validation_data, seed)
        d = {**DEFAULTS[preset["kind"]], **preset.get("defaults", {}).get(cls.task_name, {})}
        pick = lambda value, key: d[key] if value is None else value  # noqa: E731  (0 is not "default")
        seq_len, dropout = pick(seq_len, "seq_len"), pick(dropout, "dropout")
        frozen_layers = presets.frozen_layers(preset, d["frozen_layers"], frozen_layers, train_word_embeddings)
        if preset["kind"] == "awe" and precision == "auto":
            # bf16 pays where matrix multiplies dominate (encoders); the word-embedding baseline is a
            # table lookup and an average, which bf16 would only make coarser.
            precision = "fp32"
        train_cfg = TrainingConfig(epochs=pick(epochs, "epochs"), batch_size=pick(batch_size, "batch_size"),
                                   learning_rate=pick(learning_rate, "learning_rate"), seed=seed,
                                   early_stopping_patience=early_stopping_patience, progress=progress,
                                   precision=precision, gradient_accumulation_steps=gradient_accumulation_steps,
                                   max_steps=max_steps, eval_every_steps=eval_every_steps,
                                   frozen_layers=frozen_layers)
        torch.manual_seed(seed)  # the head's initial weights
        backbone, preprocessor = factory.from_preset(
            preset, seq_len, train_data.texts, {"vocab_size": vocab_size, "wordvec_dim": wordvec_dim})
        init_range = getattr(backbone.config, "initializer_range", 0.02)
        network = SequenceClassifier(backbone, len(train_data.label_names), dropout, init_range)
        keep_pretrained(backbone, preset, train_cfg, train_word_embeddings, whole_encoder=freeze_encoder)
        config = {"base_model": preset["name"], "label_names": train_data.label_names,
                  "head": {"num_classes": len(train_data.label_names), "dropout": dropout},
                  "freeze_encoder": freeze_encoder, "training": train_cfg.to_dict(),
                  "verification_sample": {"origin": origin, "examples": len(sample)}}
        clf = cls(network, preprocessor, train_data.label_names, config,
                  verification_sample=sample.with_label_names(train_data.label_names).to_records())
        clf.fit(train_data, validation_data, train_cfg, class_weights, checkpoint_dir, resume)
        return clf

    def fit(self, train_data: TextDataset, validation_data: TextDataset | None, train_cfg: "TrainingConfig",
            class_weights=None, checkpoint_dir=None, resume: bool = False) -> list[dict]:
        import torch.nn.functional as F

        from textmaker.models.runner import TorchRunner
        from textmaker.training import Trainer

        network = self._require_network("train")
        train_data = train_data.with_label_names(self.label_names)
        rows = self._rows(train_data)
        weights = self._class_weights(class_weights, train_data)

        def loss_fn(model, batch):
            logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).float()
            loss = F.cross_entropy(logits, batch["label"], weight=weights.to(logits.device) if weights is not None else None)
            return loss, {"accuracy": (logits.argmax(-1) == batch["label"]).sum()}

        validate = None
        if validation_data is not None:
            val = validation_data.with_label_names(self.label_names)
            val_rows = self._rows(val)

            def validate(model):
                r = self._report(val, val_rows, TorchRunner(model, self.runner.device), train_cfg.eval_batch_size)
                return {"loss": r["loss"], "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}

        trainer = Trainer(network, loss_fn, self.preprocessor.pad_id, train_cfg, validate, self.key_metric,
                          checkpoint_dir=checkpoint_dir, device=self.runner.device)
        self.history = trainer.fit(rows, resume=resume)
        network.eval()
        if validation_data is not None:
            self.metrics = {"validation": self._report(val, val_rows, batch_size=train_cfg.eval_batch_size)}
        return self.history

    def _class_weights(self, spec, data: TextDataset):
        import torch

        if spec is None:
            return None
        counts = np.array(list(data.class_counts().values()), dtype=float)
        if isinstance(spec, str):
            if spec != "balanced":
                raise TextmakerError(f"class_weights must be 'balanced' or one number per label, not {spec!r}")
            return torch.tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
        if len(spec) != len(self.label_names):
            raise TextmakerError(f"class_weights has {len(spec)} values for {len(self.label_names)} labels "
                                 f"{self.label_names}")
        return torch.tensor(list(spec), dtype=torch.float32)

    # ---- inference ----

    def _rows(self, data: TextDataset) -> list[dict]:
        rows = self.preprocessor(data.texts)
        for row, label in zip(rows, data.label_ids):
            row["label"] = label
        return rows

    def _split_rows(self, outputs, lengths):
        return list(outputs[0])

    def _logits(self, rows: list[dict], runner=None, batch_size: int = 64) -> np.ndarray:
        out = self._run(rows, batch_size, runner)
        return np.stack(out) if out else np.zeros((0, len(self.label_names)), dtype=np.float32)

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Raw scores, one row per text, columns in `label_names` order (batch_size=1: one text per call)."""
        return self._logits(self.preprocessor(_check_texts(texts)), batch_size=batch_size)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Class probabilities, one row per text, columns in `label_names` order."""
        return softmax(self.logits(texts, batch_size))

    def predict(self, texts: Sequence[str] | str, top_k: int = 1, batch_size: int = 64) -> list[list[Prediction]]:
        """The top_k labels with their probabilities, best first, for each text."""
        single = isinstance(texts, str)
        probs = self.predict_proba([texts] if single else texts, batch_size)
        k = max(1, min(top_k, len(self.label_names)))
        out = [[Prediction(self.label_names[j], float(p[j])) for j in np.argsort(-p, kind="stable")[:k]]
               for p in probs]
        return out

    # ---- evaluation ----

    def _report(self, data: TextDataset, rows: list[dict], runner=None, batch_size: int = 64) -> dict:
        logits = self._logits(rows, runner, batch_size)
        y = np.array(data.label_ids)
        return classification_report(y, logits.argmax(-1), self.label_names, cross_entropy(logits, y))

    def evaluate(self, data: TextDataset, output_dir: str | Path | None = None, batch_size: int = 64) -> dict:
        """loss, accuracy, per-class P/R/F1, macro-F1, confusion matrix; with output_dir, JSON and a PNG too."""
        data = data.with_label_names(self.label_names)
        report = self._report(data, self._rows(data), batch_size=batch_size)
        if output_dir is not None:
            output_dir = Path(output_dir)
            write_json(output_dir / "metrics.json", report)
            plot_confusion_matrix(report.get("confusion_matrix"), self.label_names, output_dir / "confusion_matrix.png")
        return report

    # ---- save / load ----

    def _save_extra(self, directory: Path) -> None:
        write_lines(directory / "labels.txt", self.label_names)
        write_json(directory / "history.json", self.history)
        write_json(directory / "metrics.json", self.metrics)
        if self.history:
            plot_history(self.history, directory / "training_curves.png")
        if "validation" in self.metrics:
            plot_confusion_matrix(self.metrics["validation"].get("confusion_matrix"), self.label_names,
                                  directory / "confusion_matrix.png")

    @classmethod
    def _settings_from_hf(cls, config: dict, directory: Path) -> dict:
        labels = hf_layout.label_names_of(config)
        if not labels:
            raise TextmakerError(f"{directory / 'config.json'}: no id2label; a classifier needs its label names")
        dropout = config.get("classifier_dropout")
        dropout = config.get("hidden_dropout_prob", 0.1) if dropout is None else dropout
        return {"preprocessor": cls._hf_preprocessor(config, directory, DEFAULTS["bert"]["seq_len"]),
                "label_names": labels, "head": {"num_classes": len(labels), "dropout": dropout},
                "base_model": str(directory)}

    def verification_data(self) -> TextDataset | None:
        """The real labelled examples kept at training time to check exports on."""
        if not self.verification_sample:
            return None
        return TextDataset.from_lists([r["text"] for r in self.verification_sample],
                                      [r["label"] for r in self.verification_sample], self.label_names,
                                      source="the model's verification sample")

    @classmethod
    def load(cls, directory: str | Path) -> "TextClassifier":
        from textmaker.models.heads import SequenceClassifier

        directory = Path(directory)
        parts = cls._load_parts(directory)
        # config.json keeps the label names as JSON strings, which any label survives; labels.txt
        # (one per line, for people and runtimes) is the fallback for hand-made directories.
        labels = parts.settings.get("label_names")
        if labels is None and (directory / "labels.txt").is_file():
            labels = read_lines(directory / "labels.txt")
        if not labels or not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise TextmakerError(f"{directory}/config.json: no label_names list (nor a labels.txt); the model "
                                 f"directory is incomplete")
        with settings_of(directory):
            network = SequenceClassifier(parts.backbone, len(labels), float(parts.settings["head"]["dropout"]))
            cls._load_weights(network, directory)
            return cls(network, parts.preprocessor, labels, parts.settings, parts.history, parts.metrics,
                       verification_sample=parts.verification_sample)


def _verification_sample(train: TextDataset, validation: TextDataset | None, seed: int):
    """-> (the training data left, the sample, where the sample came from)."""
    if validation is not None:
        return train, validation.sample(SAMPLE_SIZE, seed), "validation data"
    held = min(HOLD_OUT, len(train) // 10)
    if held >= 20:
        train, rest = train.split(1 - held / len(train), seed)
        return train, rest, "held out of training"
    return train, train.sample(SAMPLE_SIZE, seed), "training data (too few examples to hold any out)"


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TextmakerError(f"text {i + 1} is a {type(t).__name__}, not a string")
    return texts
