"""QuestionAnswerer: extractive, SQuAD-style question answering.

The task adds only its windows (qa_windows), its head (start/end logits per
token), its decoding (qa_decoding) and its metrics (the official SQuAD EM/F1);
tokenizer, encoder, trainer and save directory are the shared ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from typing import TYPE_CHECKING

import numpy as np

from textmaker import presets
from textmaker.data.squad import QADataset, QAExample
from textmaker.errors import TextmakerError
from textmaker.io import write_json
from textmaker.metrics import log_softmax, squad_evaluate
from textmaker.options import check_seq_len, check_training, positive_int
from textmaker.plots import plot_history
from textmaker.presets import DEFAULT_PRESET
from textmaker.tasks.base import Task, keep_pretrained, settings_of
from textmaker.tasks.qa_decoding import DecodeConfig, Span, choose, decode_example
from textmaker.tasks.qa_windows import Window, WindowConfig, make_windows

if TYPE_CHECKING:
    from textmaker.training import TrainingConfig

# BertQaSpec's defaults. Every layer trains: on all of SQuAD's 33 training articles (2 epochs)
# keeping the bottom layer as pre-trained was 1.09x faster but 2.6 F1 lower (63.44 against 65.99).
DEFAULTS = {"seq_len": 384, "query_len": 64, "doc_stride": 128, "learning_rate": 8e-5, "batch_size": 16,
            "epochs": 2, "dropout": 0.1, "frozen_layers": 0}
_MASKED = -1e4  # logit for padding positions: never a start or an end
SAMPLE_SIZE = 100  # validation questions kept in the model directory to check exports on


class QuestionAnswerer(Task):
    task_name = "question_answerer"
    key_metric = "f1"

    def __init__(self, network, preprocessor, config: dict, history: list[dict] | None = None,
                 metrics: dict | None = None, runner=None, verification_sample: list[dict] | None = None):
        super().__init__(network, preprocessor, config, runner, verification_sample, history, metrics)
        self.windows = WindowConfig(preprocessor.seq_len, config["windows"]["query_len"],
                                    config["windows"]["doc_stride"])
        self.decoding = DecodeConfig(**config["decoding"])
        self.version_2_with_negative = config["version_2_with_negative"]

    # ---- training ----

    @classmethod
    def create(cls, train_data: QADataset, validation_data: QADataset | None = None,
               model: str | Path = DEFAULT_PRESET, *, epochs: int | None = None, batch_size: int | None = None,
               learning_rate: float | None = None, seq_len: int | None = None, query_len: int | None = None,
               doc_stride: int | None = None, dropout: float | None = None, n_best_size: int = 20,
               max_answer_length: int = 30, null_score_diff_threshold: float = 0.0,
               early_stopping_patience: int | None = None, seed: int = 0,
               checkpoint_dir: str | Path | None = None, resume: bool = False,
               progress: bool = True, precision: str = "auto",
               gradient_accumulation_steps: int = 1, max_steps: int | None = None,
               train_word_embeddings: bool | None = None, eval_every_steps: int | None = None,
               frozen_layers: int | None = None) -> "QuestionAnswerer":
        """Build a question answerer on `model` and train it. Up to 100 validation questions (else
        training questions) are kept in the model directory to check exports on.
        train_word_embeddings, frozen_layers: as TextClassifier.create's (every layer trains by default)."""
        import torch

        from textmaker.models import factory
        from textmaker.models.heads import SpanExtractor
        from textmaker.training import TrainingConfig

        check_training(epochs, batch_size, learning_rate, dropout, early_stopping_patience, seed=seed)
        positive_int("gradient_accumulation_steps", gradient_accumulation_steps)
        positive_int("max_steps", max_steps)
        positive_int("eval_every_steps", eval_every_steps)
        positive_int("query_len", query_len)
        positive_int("doc_stride", doc_stride)
        preset = presets.resolve(model)
        if preset["kind"] != "bert":
            raise TextmakerError(f"question answering needs a BERT encoder, not {preset['name']!r}")
        check_seq_len(seq_len, "bert", presets.max_positions(preset))
        d = {**DEFAULTS, **preset.get("defaults", {}).get(cls.task_name, {})}
        pick = lambda value, key: d[key] if value is None else value  # noqa: E731
        frozen_layers = presets.frozen_layers(preset, d["frozen_layers"], frozen_layers, train_word_embeddings)
        windows = WindowConfig(pick(seq_len, "seq_len"), pick(query_len, "query_len"), pick(doc_stride, "doc_stride"))
        train_cfg = TrainingConfig(epochs=pick(epochs, "epochs"), batch_size=pick(batch_size, "batch_size"),
                                   learning_rate=pick(learning_rate, "learning_rate"), seed=seed,
                                   early_stopping_patience=early_stopping_patience, progress=progress,
                                   precision=precision, gradient_accumulation_steps=gradient_accumulation_steps,
                                   max_steps=max_steps, eval_every_steps=eval_every_steps,
                                   frozen_layers=frozen_layers)
        torch.manual_seed(seed)
        backbone, preprocessor = factory.from_preset(preset, windows.seq_len)
        network = SpanExtractor(backbone, pick(dropout, "dropout"), backbone.config.initializer_range)
        keep_pretrained(backbone, preset, train_cfg, train_word_embeddings)
        config = {"base_model": preset["name"], "head": {"dropout": pick(dropout, "dropout")},
                  "windows": {"query_len": windows.query_len, "doc_stride": windows.doc_stride},
                  "decoding": dataclasses.asdict(DecodeConfig(n_best_size, max_answer_length,
                                                              null_score_diff_threshold)),
                  "version_2_with_negative": train_data.version_2_with_negative, "training": train_cfg.to_dict()}
        sample = (validation_data or train_data).sample(SAMPLE_SIZE, seed)
        config["verification_sample"] = {"origin": "validation data" if validation_data else "training data",
                                         "examples": len(sample)}
        qa = cls(network, preprocessor, config, verification_sample=sample.to_records())
        qa.fit(train_data, validation_data, train_cfg, checkpoint_dir, resume)
        return qa

    def fit(self, train_data: QADataset, validation_data: QADataset | None, train_cfg: "TrainingConfig",
            checkpoint_dir=None, resume: bool = False) -> list[dict]:
        import torch.nn.functional as F

        from textmaker.models.runner import TorchRunner
        from textmaker.training import Trainer

        network = self._require_network("train")
        rows = [w.row() for w in self.make_windows(train_data.examples)]

        def loss_fn(model, batch):
            start, end = (x.float() for x in model(batch["input_ids"], batch["attention_mask"],
                                                   batch["token_type_ids"]))
            pad = batch["attention_mask"] == 0
            loss = (F.cross_entropy(start.masked_fill(pad, _MASKED), batch["start_position"])
                    + F.cross_entropy(end.masked_fill(pad, _MASKED), batch["end_position"])) / 2
            return loss, {}

        validate = None
        if validation_data is not None:
            val_windows = self.make_windows(validation_data.examples)

            def validate(model):
                runner = TorchRunner(model, self.runner.device)
                return self._score(validation_data, val_windows, runner, train_cfg.eval_batch_size)[0]

        trainer = Trainer(network, loss_fn, self.preprocessor.pad_id, train_cfg, validate, self.key_metric,
                          checkpoint_dir=checkpoint_dir, device=self.runner.device)
        self.history = trainer.fit(rows, resume=resume)
        network.eval()
        if validation_data is not None:
            self.metrics = {"validation": self._score(validation_data, val_windows)[0]}
        return self.history

    # ---- inference ----

    def make_windows(self, examples: Sequence[QAExample]) -> list[Window]:
        """The model's inputs for these questions: overlapping windows over each context (doc_stride)."""
        return make_windows(self.preprocessor.tokenizer, list(examples), self.windows)

    def _split_rows(self, outputs, lengths):
        start, end = outputs
        return [(start[i, :n], end[i, :n]) for i, n in enumerate(lengths)]

    def window_logits(self, windows: Sequence[Window], runner=None, batch_size: int = 64):
        """(start logits, end logits) per window, over its real tokens."""
        return self._run([w.row() for w in windows], batch_size, runner)

    def decode(self, examples: Sequence[QAExample], windows: Sequence[Window], logits) -> tuple[dict, dict, dict]:
        """Window logits -> (answers, n-best spans, null odds) per question id."""
        by_example: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_example.setdefault(w.example_index, []).append(i)
        predictions, nbest, null_odds = {}, {}, {}
        v2 = self.version_2_with_negative
        for n, ex in enumerate(examples):
            idx = by_example[n]
            spans, null_score = decode_example(ex.context, [windows[i] for i in idx], [logits[i][0] for i in idx],
                                               [logits[i][1] for i in idx], self.decoding, with_null=v2)
            predictions[ex.id], null_odds[ex.id] = choose(spans, null_score, self.decoding, v2)
            nbest[ex.id] = spans
        return predictions, nbest, null_odds

    def _score(self, data: QADataset, windows: list[Window], runner=None, batch_size: int = 64):
        logits = self.window_logits(windows, runner, batch_size)
        predictions, nbest, null_odds = self.decode(data.examples, windows, logits)
        golds = {ex.id: [a.text for a in ex.answers] for ex in data.examples}
        metrics = squad_evaluate(golds, predictions, null_odds if self.version_2_with_negative else None)
        # The training loss on these windows, so validation and training curves compare.
        losses = []
        for w, (s, e) in zip(windows, logits):
            ls, le = log_softmax(s.astype(np.float64)), log_softmax(e.astype(np.float64))
            losses.append(-float(ls[w.start_position] + le[w.end_position]) / 2)
        return {"loss": float(np.mean(losses)), **metrics}, predictions, nbest, null_odds

    def predict(self, data: QADataset, batch_size: int = 64) -> dict[str, str]:
        """Question id -> answer text ("" where a v2.0 model abstains)."""
        windows = self.make_windows(data.examples)
        return self.decode(data.examples, windows, self.window_logits(windows, batch_size=batch_size))[0]

    def answer(self, question: str, context: str) -> Span:
        """The best answer span in a context of any length: text, score and character offsets."""
        return self.n_best(question, context, 1)[0]

    def n_best(self, question: str, context: str, k: int | None = None) -> list[Span]:
        """The k best answer spans (default n_best_size), best first, with probabilities."""
        if not question.strip() or not context.strip():
            raise TextmakerError("a question and a context are both needed")
        windows = self.make_windows([QAExample("q", question, context, [])])
        logits = self.window_logits(windows)
        spans, _ = decode_example(context, windows, [x[0] for x in logits], [x[1] for x in logits], self.decoding,
                                  with_null=self.version_2_with_negative)
        return spans[: k or self.decoding.n_best_size]

    # ---- evaluation ----

    def evaluate(self, data: QADataset, output_dir: str | Path | None = None, batch_size: int = 64) -> dict:
        """The official SQuAD EM/F1; with output_dir, the files the official scripts read."""
        metrics, predictions, nbest, null_odds = self._score(data, self.make_windows(data.examples), None,
                                                             batch_size)
        if output_dir is not None:
            output_dir = Path(output_dir)
            write_json(output_dir / "predictions.json", predictions)
            write_json(output_dir / "nbest_predictions.json", {
                qid: [{"text": sp.text, "probability": sp.probability, "start_logit": sp.start_logit,
                       "end_logit": sp.end_logit, "start": sp.start, "end": sp.end} for sp in spans]
                for qid, spans in nbest.items()})
            if self.version_2_with_negative:
                write_json(output_dir / "null_odds.json", null_odds)
            write_json(output_dir / "metrics.json", metrics)
        return metrics

    # ---- save / load ----

    def _save_extra(self, directory: Path) -> None:
        write_json(directory / "history.json", self.history)
        write_json(directory / "metrics.json", self.metrics)
        if self.history:
            plot_history(self.history, directory / "training_curves.png", metric="f1")

    @classmethod
    def _settings_from_hf(cls, config: dict, directory: Path) -> dict:
        return {"preprocessor": cls._hf_preprocessor(config, directory, DEFAULTS["seq_len"]),
                "head": {"dropout": config.get("hidden_dropout_prob", DEFAULTS["dropout"])},
                "windows": {"query_len": DEFAULTS["query_len"], "doc_stride": DEFAULTS["doc_stride"]},
                "decoding": dataclasses.asdict(DecodeConfig()), "version_2_with_negative": False,
                "base_model": str(directory)}

    def _state_to_save(self, network) -> dict:
        # The pooler feeds no span: transformers' BertForQuestionAnswering has none.
        return {k: v for k, v in super()._state_to_save(network).items() if ".pooler." not in k}

    def verification_data(self) -> QADataset | None:
        """The real questions kept at training time to check exports on."""
        if not self.verification_sample:
            return None
        return QADataset.from_records(self.verification_sample, self.version_2_with_negative,
                                      "the model's verification sample")

    @classmethod
    def load(cls, directory: str | Path) -> "QuestionAnswerer":
        from textmaker.models.heads import SpanExtractor

        directory = Path(directory)
        parts = cls._load_parts(directory)
        with settings_of(directory):
            network = SpanExtractor(parts.backbone, float(parts.settings["head"]["dropout"]))
            cls._load_weights(network, directory, optional=("backbone.pooler.",))
            return cls(network, parts.preprocessor, parts.settings, parts.history, parts.metrics,
                       verification_sample=parts.verification_sample)
