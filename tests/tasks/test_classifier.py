import json

import numpy as np
import pytest
import torch

from tests.conftest import write_tsv
from textmaker import TextClassifier, TextDataset
from textmaker.errors import TextmakerError


def _toy(rows):
    return TextDataset.from_lists([t for t, _ in rows], [l for _, l in rows])


@pytest.mark.encoder
def test_minilm_fine_tunes_to_a_useful_accuracy(minilm_clf, sample_test):
    r = minilm_clf.evaluate(sample_test)
    assert r["accuracy"] >= 0.78, r["accuracy"]  # majority class is ~0.5
    assert r["macro_f1"] >= 0.75
    assert minilm_clf.history[-1]["val_accuracy"] >= 0.7
    assert minilm_clf.metrics["validation"]["examples"] == 120


@pytest.mark.encoder
def test_predict_gives_label_names_and_probabilities(minilm_clf):
    preds = minilm_clf.predict(["a gripping, funny, beautifully acted film", "a dull, lifeless mess"], top_k=2)
    assert [p[0].label for p in preds] == ["positive", "negative"]
    for p in preds:
        assert p[0].score >= p[1].score and p[0].score + p[1].score == pytest.approx(1.0, abs=1e-5)
    assert len(minilm_clf.predict("just one", top_k=5)[0]) == 2
    probs = minilm_clf.predict_proba(["one", "two three"])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1)


@pytest.mark.encoder
def test_save_load_predicts_exactly_the_same(minilm_clf, sample_test, tmp_path):
    minilm_clf.save(tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "labels.txt", "metrics.json", "history.json",
            "training_curves.png", "confusion_matrix.png"} <= names
    assert not any(n.endswith((".pt", ".pkl", ".bin")) for n in names)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["task"] == "text_classifier" and config["preprocessor"]["seq_len"] == 64
    loaded = TextClassifier.load(tmp_path / "m")
    texts = sample_test.texts[:50]
    assert np.array_equal(loaded.predict_proba(texts), minilm_clf.predict_proba(texts))
    assert loaded.label_names == ["negative", "positive"]


@pytest.mark.encoder
def test_saved_encoder_loads_into_transformers(minilm_clf, tmp_path):
    """The encoder's weights keep Hugging Face's names: a user can take them elsewhere."""
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import save_file

    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text(json.dumps(minilm_clf.network.backbone.config.to_dict()))
    save_file({k: v.contiguous() for k, v in minilm_clf.network.backbone.state_dict().items()},
              enc / "model.safetensors")
    ref = transformers.BertModel.from_pretrained(str(enc)).eval()
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        assert torch.allclose(ref(ids).last_hidden_state, minilm_clf.network.backbone(ids)[0], atol=1e-4)


def test_evaluate_writes_metrics_and_confusion_matrix(toy_rows, tmp_path):
    clf = TextClassifier.create(_toy(toy_rows), model="average_word_embedding", epochs=20, progress=False)
    r = clf.evaluate(_toy(toy_rows), output_dir=tmp_path / "eval")
    assert r["accuracy"] == 1.0
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["confusion_matrix"] == [[48, 0], [0, 48]]
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 1000


def test_awe_save_load_and_training_is_reproducible(toy_rows, tmp_path):
    a = TextClassifier.create(_toy(toy_rows), model="average_word_embedding", epochs=3, progress=False, seed=7)
    b = TextClassifier.create(_toy(toy_rows), model="average_word_embedding", epochs=3, progress=False, seed=7)
    texts = [t for t, _ in toy_rows]
    assert np.array_equal(a.predict_proba(texts), b.predict_proba(texts))
    a.save(tmp_path / "awe")
    assert (tmp_path / "awe" / "vocab.txt").read_text().startswith("<PAD> 0\n<START> 1\n<UNKNOWN> 2\n")
    assert np.array_equal(TextClassifier.load(tmp_path / "awe").predict_proba(texts), a.predict_proba(texts))


@pytest.mark.encoder
def test_minilm_keeps_its_embeddings_and_bottom_layer_by_default(minilm_clf, minilm_dir):
    from textmaker.models.bert import load_weights

    pretrained = load_weights(minilm_dir)
    state = minilm_clf.network.backbone.state_dict()
    kept = [k for k in state if k.startswith(("embeddings.", "encoder.layer.0."))]
    assert len(kept) == 21  # 5 embedding tensors + 16 of one layer
    assert all(torch.equal(state[k], pretrained[k]) for k in kept)
    trained = [k for k in state if k.startswith("encoder.layer.1.")]
    assert all(not torch.equal(state[k], pretrained[k]) for k in trained if k.endswith("weight"))
    training = minilm_clf.config["training"]
    assert training["train_word_embeddings"] is False and training["frozen_layers"] == 1


def _tiny_bert(**kw):
    torch.manual_seed(0)
    from textmaker.models.bert import BertConfig, BertModel
    return BertModel(BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512))


def test_frozen_layers_keep_the_embeddings_and_the_bottom_layers(toy_rows):
    torch.manual_seed(0)
    clf = TextClassifier.create(_toy(toy_rows), model="bert_tiny_en_uncased_random", epochs=1, seq_len=16,
                                progress=False, frozen_layers=1)
    fresh, trained = _tiny_bert().state_dict(), clf.network.backbone.state_dict()
    for name, value in fresh.items():
        below = name.startswith(("embeddings.", "encoder.layer.0."))
        assert torch.equal(value, trained[name]) is below or not name.endswith("weight"), name
    # the random encoder's table would train by default; below a frozen layer it cannot
    assert clf.config["training"]["frozen_layers"] == 1 and clf.config["training"]["train_word_embeddings"] is False


@pytest.mark.parametrize("kw,message", [
    ({"frozen_layers": 3}, r"frozen_layers \(--frozen-layers\) must be from 0 to 2 \(the encoder's layers\), got 3"),
    ({"frozen_layers": -1}, r"must be from 0 to 2"),
    ({"frozen_layers": 1.5}, r"frozen_layers \(--frozen-layers\) must be a whole number, got 1.5"),
    ({"frozen_layers": 1, "train_word_embeddings": True}, r"train_word_embeddings .* use it with frozen_layers 0"),
    ({"frozen_layers": 1, "model": "average_word_embedding"}, r"is for BERT encoders, not 'average_word_embedding'"),
])
def test_bad_frozen_layers_are_refused(toy_rows, kw, message):
    kw = {"model": "bert_tiny_en_uncased_random", **kw}
    with pytest.raises(TextmakerError, match=message):
        TextClassifier.create(_toy(toy_rows), epochs=1, seq_len=16, progress=False, **kw)


@pytest.mark.parametrize("choice,trained", [(None, True), (False, False)])
def test_a_random_encoder_learns_its_word_embeddings_unless_told(toy_rows, choice, trained):
    torch.manual_seed(0)
    clf = TextClassifier.create(_toy(toy_rows), model="bert_tiny_en_uncased_random", epochs=1, seq_len=16,
                                progress=False, train_word_embeddings=choice)
    torch.manual_seed(0)
    from textmaker.models.bert import BertConfig, BertModel
    fresh = BertModel(BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512))
    same = torch.equal(fresh.embeddings.word_embeddings.weight, clf.network.backbone.embeddings.word_embeddings.weight)
    assert same is not trained and clf.config["training"]["train_word_embeddings"] is trained


def test_random_tiny_bert_with_frozen_encoder_trains_only_the_head(toy_rows):
    clf = TextClassifier.create(_toy(toy_rows), model="bert_tiny_en_uncased_random", epochs=1, seq_len=16,
                                freeze_encoder=True, class_weights="balanced", progress=False)
    torch.manual_seed(0)
    from textmaker.models.bert import BertConfig, BertModel
    fresh = BertModel(BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512))
    assert torch.equal(fresh.encoder.layer[0].output.dense.weight,
                       clf.network.backbone.encoder.layer[0].output.dense.weight)
    # The record says what was kept: every layer, and the word table with them.
    assert clf.config["training"]["frozen_layers"] == 2
    assert clf.config["training"]["train_word_embeddings"] is False


def test_single_class_is_refused(tmp_path):
    d = TextDataset.from_lists(["a", "b", "c"], ["x", "x", "x"])
    with pytest.raises(TextmakerError, match="only one class"):
        TextClassifier.create(d, model="average_word_embedding", progress=False)


def test_unseen_label_at_evaluation(toy_rows, tmp_path):
    clf = TextClassifier.create(_toy(toy_rows), model="average_word_embedding", epochs=1, progress=False)
    test = TextDataset.from_csv(write_tsv(tmp_path / "t.tsv", [("great", "pos"), ("meh", "neutral")]),
                                text_column="sentence")
    with pytest.raises(TextmakerError, match=r"t.tsv line 3: label 'neutral' was never seen in training"):
        clf.evaluate(test)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(TextmakerError, match="no such model directory"):
        TextClassifier.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TextmakerError, match="not a textmaker model directory"):
        TextClassifier.load(tmp_path / "empty")
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "config.json").write_text('{"task": "question_answerer"}')
    (tmp_path / "qa" / "model.safetensors").write_bytes(b"")
    with pytest.raises(TextmakerError, match="holds a question_answerer model"):
        TextClassifier.load(tmp_path / "qa")


def test_class_weights_must_match_labels(toy_rows):
    with pytest.raises(TextmakerError, match="class_weights has 3 values for 2 labels"):
        TextClassifier.create(_toy(toy_rows), model="average_word_embedding", class_weights=[1, 2, 3],
                              progress=False)


def test_auto_precision_trains_the_word_embedding_baseline_in_fp32_even_where_bf16_is_fast(toy_rows, monkeypatch):
    from textmaker import precision
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "amx_bf16"})  # auto would pick bf16
    clf = TextClassifier.create(_toy(toy_rows), model="average_word_embedding", epochs=1, progress=False)
    assert clf.history[-1]["precision"] == "fp32"
    bf16 = TextClassifier.create(_toy(toy_rows), model="average_word_embedding", epochs=1, progress=False,
                                 precision="bf16")  # asked for explicitly: honoured
    assert bf16.history[-1]["precision"] == "bf16"


@pytest.mark.encoder
def test_bf16_predictions_agree_with_the_trained_fp32_model(minilm_clf, sample_test):
    fast = minilm_clf.at_precision("bf16")
    assert fast.runner.precision == "bf16" and minilm_clf.runner.precision is None  # a twin; the model unchanged
    assert fast.network is minilm_clf.network and fast.label_names == minilm_clf.label_names
    ref, got = minilm_clf.predict_proba(sample_test.texts), fast.predict_proba(sample_test.texts)
    assert not np.array_equal(ref, got)
    assert (ref.argmax(1) == got.argmax(1)).mean() >= 0.98
    assert np.abs(ref - got).max() < 0.05
    assert abs(fast.evaluate(sample_test)["accuracy"] - minilm_clf.evaluate(sample_test)["accuracy"]) <= 0.01
