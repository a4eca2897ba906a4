"""BERT WordPiece tokenization, backed by the Rust `tokenizers` library.

Encodings keep character offsets into the original string (question answering
maps answer spans back through them) and are never padded here: batches are
padded to their own longest row at collate time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from textmaker.errors import TextmakerError
from textmaker.io import read_lines


@dataclass
class Encoding:
    ids: list[int]
    type_ids: list[int]
    offsets: list[tuple[int, int]]  # (start, end) characters; (0, 0) for special tokens
    sequence_ids: list[int | None]  # 0 first text, 1 second text, None special tokens


def _vocab_of_tokenizer_json(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    try:
        model = json.loads("\n".join(read_lines(path)))["model"]  # read_lines: a regular file of sane size
        vocab = model["vocab"] if model.get("type") == "WordPiece" else None
    except (ValueError, KeyError, TypeError):
        return None
    return [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])] if isinstance(vocab, dict) else None


class WordPieceTokenizer:
    """Text (or text pairs) -> token ids, with [CLS]/[SEP], truncation and offsets."""

    def __init__(self, vocab_path: str | Path, lowercase: bool = True, strip_accents: bool | None = None):
        """strip_accents: None follows `lowercase`, as BERT's uncased tokenizer does ("café" -> "cafe");
        False keeps accents while lower-casing, as MediaPipe's and TFLite Task Library's on-device
        BertTokenizer do, so that a model trained that way sees on the device what it was trained on."""
        vocab_path = Path(vocab_path)
        if not vocab_path.is_file():
            # transformers 5 saves tokenizer.json and no vocab.txt: the WordPiece vocabulary is inside.
            vocab = _vocab_of_tokenizer_json(vocab_path.with_name("tokenizer.json"))
            if vocab is None:
                raise TextmakerError(f"{vocab_path}: no vocabulary file; a BERT model directory needs vocab.txt "
                                     f"(or a WordPiece tokenizer.json)")
        else:
            vocab = read_lines(vocab_path)
        self.vocab_path = vocab_path
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.vocab = vocab
        for token in ("[PAD]", "[UNK]", "[CLS]", "[SEP]"):
            if token not in self.vocab:
                raise TextmakerError(f"{vocab_path}: the vocabulary has no {token} token; is it a BERT vocab.txt?")
        self._tok: Tokenizer = BertWordPieceTokenizer(
            {token: i for i, token in enumerate(self.vocab)}, lowercase=lowercase, strip_accents=strip_accents,
            clean_text=True, handle_chinese_chars=True,
        )._tokenizer
        self._tok.no_padding()
        self._tok.no_truncation()
        self.pad_id = self._tok.token_to_id("[PAD]")
        self.cls_id = self._tok.token_to_id("[CLS]")
        self.sep_id = self._tok.token_to_id("[SEP]")
        self.unk_id = self._tok.token_to_id("[UNK]")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode_batch(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                     max_length: int | None = None, add_special_tokens: bool = True) -> list[Encoding]:
        """Encode texts (and optional second texts), truncating the longest side first."""
        if max_length is not None:
            self._tok.enable_truncation(max_length, strategy="longest_first")
        else:
            self._tok.no_truncation()
        inputs = list(texts) if pairs is None else list(zip(texts, pairs))
        out = self._tok.encode_batch(inputs, add_special_tokens=add_special_tokens)
        return [Encoding(e.ids, e.type_ids, e.offsets, e.sequence_ids) for e in out]

    def encode(self, text: str, pair: str | None = None, max_length: int | None = None,
               add_special_tokens: bool = True) -> Encoding:
        return self.encode_batch([text], None if pair is None else [pair], max_length, add_special_tokens)[0]

    def tokenize(self, text: str) -> list[str]:
        return self._tok.encode(text, add_special_tokens=False).tokens

    def to_json(self) -> str:
        """A Hugging Face tokenizer.json giving these ids (normalizer with this casing and accent
        handling, BERT pre-tokenizer, WordPiece, [CLS] ... [SEP]); no truncation or padding state."""
        tok = Tokenizer.from_str(self._tok.to_str())
        tok.no_truncation()
        tok.no_padding()
        return tok.to_str()

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids))
