"""Backbones and their preprocessors, from a preset (to train) or a saved spec (to load)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from torch import nn

from textmaker.errors import TextmakerError
from textmaker.models.awe import AverageWordEmbedding, AweConfig
from textmaker.models.bert import BertConfig, BertModel
from textmaker.text.preprocessor import BertPreprocessor, WordPreprocessor
from textmaker.text.wordpiece import WordPieceTokenizer
from textmaker.text.words import WordTokenizer


def from_preset(preset: dict, seq_len: int, train_texts: Sequence[str] = (),
                awe_options: dict | None = None) -> tuple[nn.Module, object]:
    """A resolved preset -> (backbone, preprocessor). AWE builds its vocabulary from train_texts."""
    if preset["kind"] == "awe":
        options = {**preset["config"], **(awe_options or {})}
        tokenizer = WordTokenizer.build(train_texts, options["vocab_size"], preset["lowercase"])
        backbone = AverageWordEmbedding(AweConfig(vocab_size=tokenizer.vocab_size, wordvec_dim=options["wordvec_dim"]))
        return backbone, WordPreprocessor(tokenizer, seq_len)
    # Accents are kept while lower-casing, as the on-device tokenizers of MediaPipe and TFLite Task
    # Library do: what the model is trained and evaluated on is what runs in the app. ("café" is not
    # "cafe" to the model; measured on SST-2 dev and IMDB in benchmarks/RESULTS.md.)
    strip_accents = False if preset["lowercase"] else None
    if preset["source"] == "random":
        tokenizer = WordPieceTokenizer(preset["vocab_path"], preset["lowercase"], strip_accents)
        backbone = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **preset["config"]))
    else:
        tokenizer = WordPieceTokenizer(Path(preset["path"]) / "vocab.txt", preset["lowercase"], strip_accents)
        backbone = BertModel.from_pretrained(preset["path"])
        if preset.get("pooler") == "untrained":
            backbone.pooler.start_at_identity()
    if seq_len > backbone.config.max_position_embeddings:
        raise TextmakerError(f"seq_len {seq_len} is longer than the encoder's "
                             f"{backbone.config.max_position_embeddings} positions")
    return backbone, BertPreprocessor(tokenizer, seq_len)


def backbone_spec(backbone: nn.Module) -> dict:
    return backbone.config.to_dict()


def from_spec(spec: dict, source: str = "config.json") -> nn.Module:
    """An untrained backbone of a saved shape (checked first); its weights come from model.safetensors."""
    kind = spec.get("model_type") if isinstance(spec, dict) else None
    if kind == "bert":
        return BertModel(BertConfig.from_dict(spec, source))
    if kind == "average_word_embedding":
        return AverageWordEmbedding(AweConfig.from_dict(spec, source))
    raise TextmakerError(f"{source}: unknown backbone model_type {kind!r}; the file is damaged")
