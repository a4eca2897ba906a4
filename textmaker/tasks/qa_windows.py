"""SQuAD features: [CLS] question [SEP] context-window [SEP], with doc_stride windows.

The question is truncated to query_len tokens; a context longer than what is
left of seq_len is covered by overlapping windows that start doc_stride tokens
apart (BERT's run_squad). Each context token keeps its character span in the
original context, so a predicted token span maps back to the exact characters
the user gave (accents, odd whitespace and all). A window that does not hold the
whole answer points at [CLS] (position 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from textmaker.data.squad import QAExample
from textmaker.errors import TextmakerError
from textmaker.text.wordpiece import WordPieceTokenizer


@dataclass
class Window:
    example_index: int
    input_ids: list[int]
    token_type_ids: list[int]
    # character (start, end) in the context for context tokens; None for [CLS], question, [SEP]
    offsets: list[tuple[int, int] | None]
    start_position: int = 0
    end_position: int = 0

    def row(self) -> dict:
        return {"input_ids": self.input_ids, "token_type_ids": self.token_type_ids,
                "start_position": self.start_position, "end_position": self.end_position}


@dataclass(frozen=True)
class WindowConfig:
    seq_len: int = 384
    query_len: int = 64
    doc_stride: int = 128

    def __post_init__(self):
        if self.seq_len - self.query_len - 3 < 8:
            raise TextmakerError(f"seq_len {self.seq_len} leaves no room for context after query_len "
                                 f"{self.query_len}; raise seq_len or lower query_len")
        if not 0 < self.doc_stride <= self.seq_len - self.query_len - 3:
            raise TextmakerError(f"doc_stride {self.doc_stride} must be between 1 and the context room "
                                 f"{self.seq_len - self.query_len - 3}")


def answer_token_span(offsets: list[tuple[int, int]], start_char: int, end_char: int) -> tuple[int, int] | None:
    """First and last context token overlapping [start_char, end_char); None if no token does."""
    first = next((i for i, (s, e) in enumerate(offsets) if e > start_char), None)
    last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < end_char), None)
    if first is None or last is None or last < first:
        return None
    return first, last


def make_windows(tokenizer: WordPieceTokenizer, examples: list[QAExample], config: WindowConfig,
                 example_offset: int = 0) -> list[Window]:
    """Every window of every example; training targets from each example's first answer."""
    questions = tokenizer.encode_batch([e.question for e in examples], add_special_tokens=False)
    # SQuAD asks ~5 questions per paragraph: encode each distinct context once.
    distinct = list(dict.fromkeys(e.context for e in examples))
    encoded = dict(zip(distinct, tokenizer.encode_batch(distinct, add_special_tokens=False)))
    windows = []
    for n, (ex, q) in enumerate(zip(examples, questions)):
        c = encoded[ex.context]
        q_ids = q.ids[: config.query_len]
        room = config.seq_len - len(q_ids) - 3
        span = None
        if ex.answers:
            span = answer_token_span(c.offsets, ex.answers[0].start, ex.answers[0].end)
        prefix = [tokenizer.cls_id, *q_ids, tokenizer.sep_id]
        start = 0
        while True:
            length = min(room, len(c.ids) - start)
            ids = prefix + c.ids[start:start + length] + [tokenizer.sep_id]
            types = [0] * len(prefix) + [1] * (length + 1)
            offsets = [None] * len(prefix) + list(c.offsets[start:start + length]) + [None]
            w = Window(example_offset + n, ids, types, offsets)
            if span is not None and start <= span[0] and span[1] < start + length:
                w.start_position = span[0] - start + len(prefix)
                w.end_position = span[1] - start + len(prefix)
            windows.append(w)
            if start + length >= len(c.ids):
                break
            start += min(length, config.doc_stride)
    return windows
