"""A saved model directory is a Hugging Face model directory too, and the other way round.

The clients are the test: transformers' own pipeline reads textmaker's directory as it is.
"""

import json

import numpy as np
import pytest
import torch

from tests.conftest import SQUAD
from textmaker import QADataset, QuestionAnswerer, TextClassifier

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def saved_clf(minilm_clf, tmp_path_factory):
    return minilm_clf.save(tmp_path_factory.mktemp("hf") / "sst2")


def test_config_and_weights_carry_transformers_names(saved_clf, minilm_clf):
    config = json.loads((saved_clf / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["label2id"]["positive"] == 1
    assert config["hidden_size"] == 384 and config["task"] == "text_classifier"  # textmaker's beside them
    tok = json.loads((saved_clf / "tokenizer_config.json").read_text())
    assert tok["do_lower_case"] is True and tok["model_max_length"] == 64 and tok["strip_accents"] is False
    from safetensors import safe_open

    with safe_open(str(saved_clf / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "bert.embeddings.word_embeddings.weight" in names and "classifier.weight" in names
    assert not any(n.startswith("backbone.") for n in names)


@pytest.mark.encoder
def test_transformers_pipeline_runs_the_saved_directory(saved_clf, minilm_clf, sample_test):
    pipe = transformers.pipeline("text-classification", model=str(saved_clf), top_k=None, device="cpu")
    texts = sample_test.texts
    assert len(texts) >= 200
    got = pipe(texts, truncation=True, batch_size=16)
    theirs = np.array([[next(d["score"] for d in row if d["label"] == name) for name in minilm_clf.label_names]
                       for row in got])
    ours = minilm_clf.predict_proba(texts)
    assert (theirs.argmax(-1) == ours.argmax(-1)).mean() == 1.0
    assert np.abs(theirs - ours).max() <= 1e-4
    assert TextClassifier.load(saved_clf).predict(texts[:5]) == minilm_clf.predict(texts[:5])


@pytest.mark.encoder
def test_a_transformers_fine_tuned_classifier_loads_predicts_and_exports(minilm_dir, tmp_path, sample_test):
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification.from_pretrained(
        str(minilm_dir), num_labels=3, id2label={0: "bad", 1: "meh", 2: "good"}, label2id={"bad": 0, "meh": 1,
                                                                                          "good": 2}).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    model.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    clf = TextClassifier.load(tmp_path / "hf")
    assert clf.label_names == ["bad", "meh", "good"]
    texts = sample_test.texts[:40]
    with torch.no_grad():
        batch = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        theirs = torch.softmax(model(**batch).logits, -1).numpy()
    assert np.abs(clf.predict_proba(texts) - theirs).max() <= 1e-4
    from textmaker.export import ExportedModel, export

    export(clf, tmp_path / "onnx", "onnx", representative_data=None, verbose=False)
    assert np.abs(ExportedModel.load(tmp_path / "onnx").predict_proba(texts) - theirs).max() <= 1e-4


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory):
    train, held = QADataset.from_squad(SQUAD).split(0.75, seed=0)
    qa = QuestionAnswerer.create(train.sample(40, seed=0), held.sample(20, seed=0),
                                 model="bert_tiny_en_uncased_random", epochs=1, progress=False)
    return qa, held.sample(60, seed=1), qa.save(tmp_path_factory.mktemp("hfqa") / "qa")


def test_transformers_runs_the_saved_question_answerer(tiny_qa):
    qa, held, directory = tiny_qa
    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
    model = transformers.BertForQuestionAnswering.from_pretrained(str(directory)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(directory))
    # The same windows in both: held-out SQuAD questions whose question and context fit in one.
    examples = [e for e in held.examples if len(qa.make_windows([e])) == 1]
    assert len(examples) >= 20
    windows = qa.make_windows(examples)
    ours = qa.window_logits(windows)
    for w, (start, end) in zip(windows, ours):
        ids = torch.tensor([w.row()["input_ids"]])
        with torch.no_grad():
            out = model(input_ids=ids, token_type_ids=torch.tensor([w.row()["token_type_ids"]]))
        assert np.abs(out.start_logits[0].numpy() - start).max() <= 1e-4
        assert np.abs(out.end_logits[0].numpy() - end).max() <= 1e-4
    # From raw text too: transformers' tokenizer gives our windows' ids (transformers 5 has no
    # question-answering pipeline; AutoModelForQuestionAnswering is how it runs such a model).
    for e, w in zip(examples, windows):
        enc = tok(e.question, e.context, truncation="only_second", max_length=qa.preprocessor.seq_len)
        assert enc["input_ids"] == w.row()["input_ids"]


@pytest.mark.encoder
def test_a_transformers_question_answerer_loads_and_answers_as_it_does(minilm_dir, tmp_path):
    torch.manual_seed(0)
    model = transformers.BertForQuestionAnswering.from_pretrained(str(minilm_dir)).eval()
    transformers.AutoTokenizer.from_pretrained(str(minilm_dir)).save_pretrained(tmp_path / "hf")
    model.save_pretrained(tmp_path / "hf")
    qa = QuestionAnswerer.load(tmp_path / "hf")
    held = QADataset.from_squad(SQUAD).sample(10, seed=3)
    windows = qa.make_windows(held.examples)
    for w, (start, end) in zip(windows, qa.window_logits(windows)):
        row = w.row()
        with torch.no_grad():
            out = model(input_ids=torch.tensor([row["input_ids"]]), token_type_ids=torch.tensor([row["token_type_ids"]]))
        assert np.abs(out.start_logits[0].numpy() - start).max() <= 1e-4
        assert np.abs(out.end_logits[0].numpy() - end).max() <= 1e-4


def test_directories_of_textmaker_0_1_still_load(minilm_clf, saved_clf, tmp_path, sample_test):
    """0.1 nested the encoder's shape under "backbone" and named its weights backbone.*"""
    import shutil

    from safetensors.torch import load_file, save_file

    old = shutil.copytree(saved_clf, tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    backbone = {k: config.pop(k) for k in list(config) if k in minilm_clf.network.backbone.config.to_dict()}
    for key in ("architectures", "id2label", "label2id", "problem_type"):
        config.pop(key, None)
    config["backbone"] = backbone
    (old / "config.json").write_text(json.dumps(config))
    state = load_file(old / "model.safetensors")
    save_file({k.replace("bert.", "backbone.", 1): v for k, v in state.items()}, old / "model.safetensors")
    assert TextClassifier.load(old).predict(sample_test.texts[:10]) == minilm_clf.predict(sample_test.texts[:10])
