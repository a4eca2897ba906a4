import json

import pytest

from tests.conftest import SQUAD
from textmaker.data import QADataset
from textmaker.errors import TextmakerError


def _squad(path, qas, context="Tesla was born in 1856 in Smiljan.", version="v2.0"):
    path.write_text(json.dumps({"version": version, "data": [
        {"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}))
    return path


def test_real_file_loads_and_splits_by_article():
    ds = QADataset.from_squad(SQUAD)
    assert len(ds) == 1680 and len(ds.articles) == 4 and not ds.version_2_with_negative
    train, val = ds.split(0.8, seed=0)
    assert set(train.articles).isdisjoint(val.articles)
    assert len(train) + len(val) == 1680
    assert 0.7 < len(train) / len(ds) < 0.9
    assert train.split(0.8, seed=0)[0].articles == train.split(0.8, seed=0)[0].articles


def test_v2_unanswerable_and_plausible_answers(tmp_path):
    p = _squad(tmp_path / "v2.json", [
        {"id": "a", "question": "When?", "answers": [{"text": "1856", "answer_start": 18}], "is_impossible": False},
        {"id": "b", "question": "Where did he die?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "Smiljan", "answer_start": 26}]}])
    ds = QADataset.from_squad(p)
    assert ds.version_2_with_negative
    assert ds.examples[1].is_impossible and ds.examples[1].plausible_answers[0].text == "Smiljan"


def test_bad_answer_start_names_the_question_or_is_skipped(tmp_path):
    qas = [{"id": "good", "question": "When?", "answers": [{"text": "1856", "answer_start": 18}]},
           {"id": "q-42", "question": "Where?", "answers": [{"text": "Smiljan", "answer_start": 3}]}]
    p = _squad(tmp_path / "bad.json", qas, version="1.1")
    with pytest.raises(TextmakerError) as e:
        QADataset.from_squad(p)
    assert "question q-42: answer 'Smiljan' is not at answer_start 3" in str(e.value)
    ds = QADataset.from_squad(p, skip_bad_answers=True)
    assert len(ds) == 1 and ds.skipped == 1 and "1 skipped" in ds.summary()


def test_broken_json_says_where(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"data": [\n  {"title": "x",\n   "paragraphs": [}\n]}')
    with pytest.raises(TextmakerError, match=r"broken.json line 3 column \d+: not valid JSON"):
        QADataset.from_squad(p)
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(TextmakerError, match="empty"):
        QADataset.from_squad(tmp_path / "empty.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(TextmakerError, match="not SQuAD JSON"):
        QADataset.from_squad(tmp_path / "list.json")


def test_question_without_context(tmp_path):
    p = _squad(tmp_path / "noctx.json", [{"id": "z9", "question": "Q?", "answers": []}], context="")
    with pytest.raises(TextmakerError, match="question z9 has no context"):
        QADataset.from_squad(p)


def test_records_and_unanswered_v1_question():
    ds = QADataset.from_records([{"id": 1, "question": "Who?", "context": "Ada wrote it.", "answers": ["Ada"]}])
    assert ds.examples[0].answers[0].start == 0
    with pytest.raises(TextmakerError, match="question 2 has no answer"):
        QADataset.from_records([{"id": 2, "question": "Who?", "context": "Ada wrote it.", "answers": []}])
    with pytest.raises(TextmakerError, match="'Bob' is not in its context"):
        QADataset.from_records([{"id": 3, "question": "Who?", "context": "Ada wrote it.", "answers": ["Bob"]}])
