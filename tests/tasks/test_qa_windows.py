import pytest

from tests.conftest import SQUAD
from textmaker.data import QADataset, QAExample
from textmaker.data.squad import Answer
from textmaker.errors import TextmakerError
from textmaker.metrics import normalize_answer
from textmaker.presets import BUNDLED_VOCAB
from textmaker.tasks.qa_windows import WindowConfig, make_windows
from textmaker.text import WordPieceTokenizer


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer(BUNDLED_VOCAB)


def _span_text(w, ex):
    return ex.context[w.offsets[w.start_position][0]:w.offsets[w.end_position][1]]


def test_every_gold_answer_round_trips_through_windows(tok):
    """>= 99.5% of the 5,035 gold answers of the committed SQuAD slice survive text -> tokens -> text
    (benchmarks/squad_roundtrip.py measures all 28,020 of the 39 articles)."""
    ds = QADataset.from_squad(SQUAD)
    cfg = WindowConfig(384, 64, 128)
    ok = total = 0
    for ex in ds.examples:
        for answer in ex.answers:  # one answer at a time: make_windows targets the first
            one = QAExample(ex.id, ex.question, ex.context, [answer])
            windows = [w for w in make_windows(tok, [one], cfg) if w.start_position > 0]
            total += 1
            ok += any(normalize_answer(_span_text(w, one)) == normalize_answer(answer.text) for w in windows)
    assert total == 5035
    assert ok / total >= 0.995, ok / total


def test_long_context_windows_overlap_by_stride_and_cover_everything(tok):
    context = " ".join(f"word{i}" for i in range(600))
    answer = "word555"
    ex = QAExample("x", "which word?", context, [Answer(answer, context.index(answer))])
    cfg = WindowConfig(seq_len=128, query_len=16, doc_stride=64)
    windows = make_windows(tok, [ex], cfg)
    assert len(windows) > 5 and all(len(w.input_ids) <= 128 for w in windows)
    covered = {o for w in windows for o in w.offsets if o is not None}
    assert len(covered) == len(tok.encode(context, add_special_tokens=False).ids)
    firsts = [next(o for o in w.offsets if o is not None)[0] for w in windows]
    assert firsts == sorted(firsts)
    hits = [w for w in windows if w.start_position]
    assert hits and all(_span_text(w, ex) == answer for w in hits)
    assert any(w.start_position == 0 and w.end_position == 0 for w in windows)  # others point at [CLS]


def test_question_is_truncated_and_types_mark_the_context(tok):
    ex = QAExample("x", " ".join(["why"] * 100), "short context here", [Answer("context", 6)])
    (w,) = make_windows(tok, [ex], WindowConfig(seq_len=64, query_len=10, doc_stride=16))
    assert w.input_ids[0] == tok.cls_id and w.input_ids[11] == tok.sep_id
    assert w.token_type_ids == [0] * 12 + [1] * (len(w.input_ids) - 12)
    assert w.offsets[:12] == [None] * 12 and w.offsets[-1] is None


def test_unicode_and_odd_whitespace_map_back_exactly(tok):
    context = "Le  café\u00a0Procope, fondé en 1686 par Francesco\tProcopio dei Coltelli — à Paris."
    for answer in ("café\u00a0Procope", "Francesco\tProcopio dei Coltelli", "à Paris", "1686"):
        ex = QAExample("x", "q?", context, [Answer(answer, context.index(answer))])
        (w,) = make_windows(tok, [ex], WindowConfig(seq_len=128, query_len=8, doc_stride=32))
        assert _span_text(w, ex) == answer


def test_bad_window_settings(tok):
    with pytest.raises(TextmakerError, match="no room for context"):
        WindowConfig(seq_len=64, query_len=60)
    with pytest.raises(TextmakerError, match="doc_stride"):
        WindowConfig(seq_len=128, query_len=16, doc_stride=500)
