"""Regex word tokenization with a vocabulary built from the training texts.

The average-word-embedding baseline's tokenizer, with MediaPipe's defaults:
lower-case, split on anything that is not a word character or an apostrophe,
keep the `vocab_size` most frequent words. Ids 0-2 are <PAD>, <START>, <UNKNOWN>;
every sequence starts with <START>, as MediaPipe's does.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from textmaker.io import read_lines, write_lines

SPECIAL_TOKENS = ["<PAD>", "<START>", "<UNKNOWN>"]
PAD_ID, START_ID, UNK_ID = 0, 1, 2
_SPLIT = re.compile(r"[^\w\']+")


class WordTokenizer:
    def __init__(self, vocab: Sequence[str], lowercase: bool = True):
        self.vocab = list(vocab)
        self.lowercase = lowercase
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id = PAD_ID

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 10000, lowercase: bool = True) -> "WordTokenizer":
        counts = Counter()
        for text in texts:
            counts.update(cls._words(text, lowercase))
        # Most frequent first; ties in alphabetical order so the vocabulary is reproducible.
        words = sorted(counts, key=lambda w: (-counts[w], w))[: max(vocab_size - len(SPECIAL_TOKENS), 0)]
        return cls(SPECIAL_TOKENS + words, lowercase)

    @staticmethod
    def _words(text: str, lowercase: bool) -> list[str]:
        if lowercase:
            text = text.lower()
        return [w for w in _SPLIT.split(text) if w]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def tokenize(self, text: str) -> list[str]:
        return self._words(text, self.lowercase)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        ids = [START_ID] + [self.index.get(w, UNK_ID) for w in self._words(text, self.lowercase)]
        return ids[:max_length] if max_length else ids

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        return [self.encode(t, max_length) for t in texts]

    def save(self, path: str | Path) -> None:
        write_lines(path, self.vocab)

    @classmethod
    def load(cls, path: str | Path, lowercase: bool = True) -> "WordTokenizer":
        return cls(read_lines(path), lowercase)
