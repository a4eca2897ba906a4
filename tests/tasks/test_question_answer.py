import json

import pytest

from tests.conftest import SQUAD
from textmaker import QADataset, QuestionAnswerer, TextClassifier
from textmaker.data import QAExample
from textmaker.errors import TextmakerError
from textmaker.metrics import normalize_answer



@pytest.fixture(scope="module")
def squad_small():
    train, val = QADataset.from_squad(SQUAD).split(0.8, seed=0)
    return train.sample(48, seed=0), val.sample(24, seed=0)


@pytest.fixture(scope="module")
def tiny_qa(squad_small):
    """A random-weight tiny BERT: fast, for the mechanics (windows, decoding, files, save/load)."""
    train, val = squad_small
    return QuestionAnswerer.create(train, val, model="bert_tiny_en_uncased_random", epochs=1, seq_len=128,
                                   query_len=32, doc_stride=48, batch_size=16, progress=False)


def test_evaluate_writes_the_official_files(tiny_qa, squad_small, tmp_path):
    _, val = squad_small
    m = tiny_qa.evaluate(val, output_dir=tmp_path)
    assert set(m) >= {"exact_match", "f1", "total", "loss"} and m["total"] == 24
    preds = json.loads((tmp_path / "predictions.json").read_text())
    nbest = json.loads((tmp_path / "nbest_predictions.json").read_text())
    assert set(preds) == {e.id for e in val.examples} == set(nbest)
    for e in val.examples:
        assert preds[e.id] == nbest[e.id][0]["text"] and preds[e.id] in e.context
        assert 1 <= len(nbest[e.id]) <= 20
        assert sum(x["probability"] for x in nbest[e.id]) == pytest.approx(1.0, abs=1e-6)
    assert not (tmp_path / "null_odds.json").exists()  # v1.1


def test_answer_on_a_long_context_is_a_real_span(tiny_qa):
    context = " ".join(f"Sentence {i} says that the value is {i * 7}." for i in range(300))
    span = tiny_qa.answer("What is the value?", context)
    assert context[span.start:span.end] == span.text and span.text
    spans = tiny_qa.n_best("What is the value?", context, 5)
    assert len(spans) == 5 and spans[0].score >= spans[-1].score
    assert len(tiny_qa.make_windows([QAExample("x", "q", context, [])])) > 10


def test_save_load_answers_exactly_the_same(tiny_qa, squad_small, tmp_path):
    _, val = squad_small
    tiny_qa.save(tmp_path / "qa")
    names = {p.name for p in (tmp_path / "qa").iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "metrics.json", "history.json"} <= names
    loaded = QuestionAnswerer.load(tmp_path / "qa")
    assert loaded.predict(val) == tiny_qa.predict(val)
    assert loaded.windows == tiny_qa.windows
    with pytest.raises(TextmakerError, match="holds a question_answerer model, not a text_classifier"):
        TextClassifier.load(tmp_path / "qa")


def test_v2_model_can_abstain_and_writes_null_odds(tmp_path):
    ctx = "The Normans were descended from Norse raiders. They settled in Normandy in the 10th century."
    records = [{"id": f"a{i}", "question": "Where did they settle?", "context": ctx,
                "answers": [{"text": "Normandy", "answer_start": ctx.index("Normandy")}]} for i in range(8)]
    records += [{"id": f"n{i}", "question": "What is the capital of Peru?", "context": ctx, "answers": [],
                 "is_impossible": True} for i in range(8)]
    data = QADataset.from_records(records, version_2_with_negative=True)
    qa = QuestionAnswerer.create(data, model="bert_tiny_en_uncased_random", epochs=1, seq_len=64, query_len=16,
                                 doc_stride=16, progress=False)
    m = qa.evaluate(data, output_dir=tmp_path)
    assert {"HasAns_exact", "NoAns_exact", "best_f1", "best_f1_thresh"} <= set(m)
    odds = json.loads((tmp_path / "null_odds.json").read_text())
    assert set(odds) == {r["id"] for r in records}
    preds = json.loads((tmp_path / "predictions.json").read_text())
    assert all(preds[q] == "" for q in odds if odds[q] > 0) and all(preds[q] for q in odds if odds[q] <= 0)


def test_awe_cannot_answer_questions(squad_small):
    with pytest.raises(TextmakerError, match="needs a BERT encoder"):
        QuestionAnswerer.create(squad_small[0], model="average_word_embedding", progress=False)


@pytest.mark.encoder
def test_minilm_learns_to_answer(squad_small):
    """The real encoder, fine-tuned on 48 questions, learns to answer them (F1 46.7 when written)."""
    train, _ = squad_small
    settings = dict(model="minilm_l6_en_uncased", learning_rate=1e-4, batch_size=8, seq_len=192, query_len=32,
                    doc_stride=96, progress=False)
    # epochs=0 is refused (0 never means "default"): one step of size 1e-12 leaves the head as initialised.
    untrained = QuestionAnswerer.create(train, epochs=1, **{**settings, "learning_rate": 1e-12}).evaluate(train)
    qa = QuestionAnswerer.create(train, epochs=3, **settings)
    m = qa.evaluate(train)
    assert m["f1"] >= 35 and m["f1"] >= untrained["f1"] + 25, (untrained, m)
    assert qa.history[-1]["train_loss"] < qa.history[0]["train_loss"]
    ex = train.examples[0]
    span = qa.answer(ex.question, ex.context)
    assert ex.context[span.start:span.end] == span.text
    answered = sum(normalize_answer(qa.answer(e.question, e.context).text) in {normalize_answer(a.text)
                                                                              for a in e.answers}
                   for e in train.examples)
    assert answered / len(train) == pytest.approx(m["exact_match"] / 100)  # answer() agrees with evaluate()
    fast = qa.at_precision("bf16").evaluate(train)  # bf16 start/end logits: the same answers within noise
    assert abs(fast["f1"] - m["f1"]) <= 5 and abs(fast["exact_match"] - m["exact_match"]) <= 5, (fast, m)
