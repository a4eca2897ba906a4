"""Regex word tokenization with a vocabulary built from the training texts.

The average-word-embedding baseline's tokenizer, with MediaPipe's defaults: split on
anything that is not a word character or an apostrophe, lower-case, keep the
`vocab_size` most frequent words. Ids 0-2 are <PAD>, <START>, <UNKNOWN>; every
sequence starts with <START>.

It is built to give, on any text, exactly the ids MediaPipe's on-device
RegexTokenizer gives from the same vocabulary file, so that what was trained and
evaluated is what runs in the app. That tokenizer splits with RE2, whose `\\w` is
ASCII-only, and never lower-cases. So here:
- the split is ASCII (`re.ASCII`): "café" is "caf" on both sides;
- lower-casing is done by the vocabulary, not at run time: each word is listed in
  every surface form that maps to it (lower, Title and UPPER case, and any other
  form seen in the training texts), all with the word's id. Lookup is exact on
  both sides, so a form neither listed nor seen ("gReAt") is <UNKNOWN> on both.
vocab.txt is MediaPipe's format, one "form id" line each.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from textmaker.errors import TextmakerError
from textmaker.io import read_lines, write_lines

SPECIAL_TOKENS = ["<PAD>", "<START>", "<UNKNOWN>"]
PAD_ID, START_ID, UNK_ID = 0, 1, 2
DELIMITER = r"[^\w\']+"  # the pattern the exported model's metadata carries
_SPLIT = re.compile(DELIMITER, re.ASCII)


def _lower(word: str) -> str:
    # Split words are ASCII, so this is RE2's and every runtime's lower-casing alike.
    return word.lower()


def _case_forms(word: str) -> list[str]:
    return list(dict.fromkeys([word, word.capitalize(), word.upper()]))


class WordTokenizer:
    def __init__(self, vocab: Sequence[str], lowercase: bool = True, forms: dict[str, int] | None = None):
        """vocab: id -> word; forms: surface form -> id (default: each word, in its case forms if lowercase)."""
        self.vocab = list(vocab)
        self.lowercase = lowercase
        self.pad_id = PAD_ID
        if forms is None:
            forms = {}
            for i, word in enumerate(self.vocab):
                for form in (_case_forms(word) if lowercase and i >= len(SPECIAL_TOKENS) else [word]):
                    forms.setdefault(form, i)
        self.forms = forms

    @staticmethod
    def split(text: str) -> list[str]:
        return [w for w in _SPLIT.split(text) if w]

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 10000, lowercase: bool = True) -> "WordTokenizer":
        counts: Counter = Counter()
        seen: dict[str, set[str]] = {}
        for text in texts:
            for form in cls.split(text):
                word = _lower(form) if lowercase else form
                counts[word] += 1
                if form != word:
                    seen.setdefault(word, set()).add(form)
        # Most frequent first; ties in alphabetical order so the vocabulary is reproducible.
        words = sorted(counts, key=lambda w: (-counts[w], w))[: max(vocab_size - len(SPECIAL_TOKENS), 0)]
        vocab = SPECIAL_TOKENS + words
        forms = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        for i, word in enumerate(words, len(SPECIAL_TOKENS)):
            for form in (_case_forms(word) if lowercase else [word]) + sorted(seen.get(word, ())):
                forms.setdefault(form, i)
        return cls(vocab, lowercase, forms)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def tokenize(self, text: str) -> list[str]:
        return self.split(text)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        ids = [START_ID] + [self.forms.get(w, UNK_ID) for w in self.split(text)]
        return ids[:max_length] if max_length else ids

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        return [self.encode(t, max_length) for t in texts]

    def save(self, path: str | Path) -> None:
        """MediaPipe's vocabulary format: "form id" per line, in id order."""
        write_lines(path, [f"{form} {i}" for form, i in sorted(self.forms.items(), key=lambda kv: kv[1])])

    def to_json(self) -> str:
        """The tokenizer as a Hugging Face tokenizer.json: lower-casing (when trained so), the split as an
        explicit ASCII class, WordLevel over the words, <START> first. A WordLevel vocabulary holds one
        form per id, so lower-casing is a normalizer here: the ids equal textmaker's (and MediaPipe's)
        except on a case form neither listed nor seen in training ("gReAt"), which is <UNKNOWN> there
        and the word here."""
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

        tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(self.vocab)},
                                         unk_token=SPECIAL_TOKENS[UNK_ID]))
        if self.lowercase:
            tok.normalizer = normalizers.Lowercase()
        # Spelled out: the `tokenizers` regex engine's \w would match non-ASCII letters.
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[^A-Za-z0-9_']+"), behavior="removed")
        tok.post_processor = processors.TemplateProcessing(
            single=f"{SPECIAL_TOKENS[START_ID]} $A", special_tokens=[(SPECIAL_TOKENS[START_ID], START_ID)])
        return tok.to_str()

    @classmethod
    def load(cls, path: str | Path, lowercase: bool = True) -> "WordTokenizer":
        lines = read_lines(path)
        if not lines or " " not in lines[0]:  # textmaker 0.1: one word per line, the id is the line
            return cls(lines, lowercase)
        forms: dict[str, int] = {}
        vocab: dict[int, str] = {}
        for n, line in enumerate(lines, 1):
            form, _, number = line.rpartition(" ")
            if not form or not number.isdigit():
                raise TextmakerError(f"{path} line {n}: expected \"word id\", got {line!r}")
            forms[form] = int(number)
            vocab.setdefault(int(number), form)  # the first form of an id is its word
        if sorted(vocab) != list(range(len(vocab))):
            raise TextmakerError(f"{path}: the ids are not 0..{len(vocab) - 1}; the vocabulary file is damaged")
        return cls([vocab[i] for i in range(len(vocab))], lowercase, forms)
