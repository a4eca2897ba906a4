"""Preprocessors: raw text -> model rows, and back to a directory.

A preprocessor pairs a tokenizer with a sequence length, as keras-hub's do, and
is the only thing a task asks to turn text into `input_ids`/`token_type_ids`.
Rows are unpadded; batches pad themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from textmaker.errors import TextmakerError
from textmaker.io import write_json, write_lines, write_text
from textmaker.text.wordpiece import WordPieceTokenizer
from textmaker.text.words import WordTokenizer


class BertPreprocessor:
    kind = "wordpiece"

    def __init__(self, tokenizer: WordPieceTokenizer, seq_len: int = 128):
        if seq_len < 8:
            raise TextmakerError(f"seq_len {seq_len} is too short; use at least 8")
        self.tokenizer, self.seq_len = tokenizer, seq_len
        self.pad_id = tokenizer.pad_id

    def __call__(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[dict]:
        return [{"input_ids": e.ids, "token_type_ids": e.type_ids}
                for e in self.tokenizer.encode_batch(texts, pairs, max_length=self.seq_len)]

    def config(self) -> dict:
        return {"kind": self.kind, "seq_len": self.seq_len, "lowercase": self.tokenizer.lowercase,
                "strip_accents": self.tokenizer.strip_accents}

    def save(self, directory: Path) -> None:
        """vocab.txt, and the tokenizer.json and tokenizer_config.json transformers, Optimum and
        transformers.js read."""
        write_lines(directory / "vocab.txt", self.tokenizer.vocab)
        write_text(directory / "tokenizer.json", self.tokenizer.to_json())
        write_json(directory / "tokenizer_config.json", {
            "tokenizer_class": "BertTokenizer", "do_lower_case": self.tokenizer.lowercase,
            "strip_accents": self.tokenizer.strip_accents, "tokenize_chinese_chars": True,
            "model_max_length": self.seq_len, "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
            "cls_token": "[CLS]", "mask_token": "[MASK]"})

    @classmethod
    def load(cls, cfg: dict, directory: Path) -> "BertPreprocessor":
        # textmaker 0.1 saved no strip_accents: its models strip them with lower-casing (None).
        return cls(WordPieceTokenizer(directory / "vocab.txt", cfg["lowercase"], cfg.get("strip_accents")),
                   cfg["seq_len"])


class WordPreprocessor:
    kind = "words"

    def __init__(self, tokenizer: WordTokenizer, seq_len: int = 256):
        self.tokenizer, self.seq_len = tokenizer, seq_len
        self.pad_id = tokenizer.pad_id

    def __call__(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[dict]:
        if pairs is not None:
            raise TextmakerError("the average word embedding model takes single texts, not pairs")
        return [{"input_ids": ids} for ids in self.tokenizer.encode_batch(texts, self.seq_len)]

    def config(self) -> dict:
        return {"kind": self.kind, "seq_len": self.seq_len, "lowercase": self.tokenizer.lowercase}

    def save(self, directory: Path) -> None:
        self.tokenizer.save(directory / "vocab.txt")
        write_text(directory / "tokenizer.json", self.tokenizer.to_json())
        write_json(directory / "tokenizer_config.json", {
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": self.seq_len,
            "unk_token": "<UNKNOWN>", "pad_token": "<PAD>", "bos_token": "<START>"})

    @classmethod
    def load(cls, cfg: dict, directory: Path) -> "WordPreprocessor":
        return cls(WordTokenizer.load(directory / "vocab.txt", cfg["lowercase"]), cfg["seq_len"])


PREPROCESSORS = {cls.kind: cls for cls in (BertPreprocessor, WordPreprocessor)}
