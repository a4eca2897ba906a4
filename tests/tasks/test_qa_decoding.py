import numpy as np
import pytest

from textmaker.tasks.qa_decoding import DecodeConfig, choose, decode_example
from textmaker.tasks.qa_windows import Window

CONTEXT = "Ada Lovelace wrote the first program in 1843."
#         0   4        13    19  23    29      37 40


def _window(offsets):
    # [CLS] q [SEP] then context tokens, [SEP]
    offs = [None, None, None] + offsets + [None]
    return Window(0, list(range(len(offs))), [0] * len(offs), offs)


TOKENS = [(0, 3), (4, 12), (13, 18), (19, 22), (23, 28), (29, 36), (37, 39), (40, 44), (44, 45)]


def _logits(n, start_at=None, end_at=None, cls=0.0, question=None):
    s, e = np.full(n, -5.0), np.full(n, -5.0)
    s[0] = e[0] = cls
    if start_at is not None:
        s[start_at] = 5.0
    if end_at is not None:
        e[end_at] = 5.0
    if question is not None:
        s[question] = e[question] = 50.0  # a span in the question must never win
    return s, e


def test_best_span_maps_to_characters_and_refuses_question_tokens():
    w = _window(TOKENS)
    s, e = _logits(len(w.offsets), start_at=3, end_at=4, question=1)
    spans, null = decode_example(CONTEXT, [w], [s], [e], DecodeConfig())
    assert spans[0].text == "Ada Lovelace" and (spans[0].start, spans[0].end) == (0, 12)
    assert spans[0].score == pytest.approx(10.0) and null == pytest.approx(0.0)
    assert sum(sp.probability for sp in spans) == pytest.approx(1.0)
    assert choose(spans, null, DecodeConfig(), with_null=False)[0] == "Ada Lovelace"


def test_end_before_start_and_too_long_spans_are_refused():
    w = _window(TOKENS)
    s, e = _logits(len(w.offsets), start_at=8, end_at=4)
    spans, _ = decode_example(CONTEXT, [w], [s], [e], DecodeConfig())
    assert all(sp.end > sp.start and sp.start <= sp.end for sp in spans)
    assert spans[0].text not in ("", CONTEXT)
    s, e = _logits(len(w.offsets), start_at=3, end_at=11)
    spans, _ = decode_example(CONTEXT, [w], [s], [e], DecodeConfig(max_answer_length=3))
    assert all(len(sp.text.split()) <= 3 for sp in spans)


def test_best_across_windows_and_v2_null_threshold():
    w1, w2 = _window(TOKENS[:5]), _window(TOKENS[4:])
    s1, e1 = _logits(len(w1.offsets), start_at=4, end_at=5, cls=1.0)  # "Lovelace wrote" 10
    s2, e2 = _logits(len(w2.offsets), start_at=4, end_at=6, cls=3.0)
    s2[4], e2[6] = 6.0, 6.0  # "the first ... " 12
    spans, null = decode_example(CONTEXT, [w1, w2], [s1, s2], [e1, e2], DecodeConfig(), with_null=True)
    assert spans[0].score == pytest.approx(12.0)
    assert null == pytest.approx(2.0)  # the smaller [CLS] score over windows
    assert any(sp.text == "" for sp in spans)  # v2 n-best carries the null answer
    text, odds = choose(spans, null, DecodeConfig(null_score_diff_threshold=0.0), with_null=True)
    assert text == spans[0].text and odds == pytest.approx(-10.0)
    text, _ = choose(spans, null, DecodeConfig(null_score_diff_threshold=-11.0), with_null=True)
    assert text == ""
