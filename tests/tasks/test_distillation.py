import json

import numpy as np
import pytest
import torch

from textmaker import TextClassifier, TextDataset
from textmaker.errors import TextmakerError
from textmaker.tasks.distillation import Distillation, distillation_loss, soft_targets

AWE = dict(model="average_word_embedding", epochs=30, progress=False)


def _data(rows, flip=False):
    texts = [t for t, _ in rows]
    labels = [{"pos": "neg", "neg": "pos"}[l] if flip else l for _, l in rows]
    return TextDataset.from_lists(texts, labels, ["neg", "pos"])


@pytest.fixture(scope="module")
def teacher(toy_rows_module):
    return TextClassifier.create(_data(toy_rows_module), **AWE)


def test_the_loss_is_t_squared_kl_and_zero_when_the_student_matches():
    torch.manual_seed(0)
    logits, teacher_logits = torch.randn(5, 3), torch.randn(5, 3)
    for t in (1.0, 2.0, 4.0):
        soft = torch.softmax(teacher_logits / t, -1)
        expected = torch.nn.functional.kl_div(torch.log_softmax(logits / t, -1), soft, reduction="batchmean") * t * t
        assert distillation_loss(logits, soft, t).item() == pytest.approx(expected.item(), rel=1e-5)
        assert distillation_loss(teacher_logits, soft, t).item() == pytest.approx(0.0, abs=1e-6)
    # a teacher certain to the last bit (a probability of exactly 0) stays finite
    assert torch.isfinite(distillation_loss(logits[:, :2], torch.tensor([[1.0, 0.0]] * 5), 1.0))


def test_soft_targets_average_the_teachers_and_follow_the_students_label_order(teacher, toy_rows_module):
    texts = [t for t, _ in toy_rows_module][:10]
    p = soft_targets(Distillation((teacher,), temperature=3.0), texts, ["pos", "neg"], precision="fp32")
    logits = teacher.logits(texts).astype(np.float64)[:, [1, 0]] / 3.0  # teacher's order is neg, pos
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.allclose(p, expected, atol=1e-5) and np.allclose(p.sum(1), 1, atol=1e-5)
    two = soft_targets(Distillation((teacher, teacher), temperature=3.0), texts, ["pos", "neg"], precision="fp32")
    assert np.allclose(two, p, atol=1e-6)


def test_a_student_on_flipped_labels_follows_its_teacher_not_the_labels(teacher, toy_rows_module):
    """With all of the loss on the teacher, the (deliberately wrong) labels are ignored."""
    flipped = _data(toy_rows_module, flip=True)
    student = TextClassifier.create(flipped, teachers=teacher, distill_weight=1.0, distill_temperature=1.0, **AWE)
    alone = TextClassifier.create(flipped, **AWE)
    texts = [t for t, _ in toy_rows_module]
    said = [p[0].label for p in teacher.predict(texts)]
    agree = lambda m: np.mean([p[0].label == s for p, s in zip(m.predict(texts), said)])  # noqa: E731
    assert agree(student) >= 0.9 and agree(alone) <= 0.1, (agree(student), agree(alone))
    assert student.config["distillation"] == {"teachers": ["average_word_embedding"], "weight": 1.0,
                                              "temperature": 1.0}
    # half the loss on each: the student learns something of both, and the history records a loss
    mixed = TextClassifier.create(flipped, teachers=[teacher], **AWE)
    assert np.isfinite(mixed.history[-1]["train_loss"])


def test_bad_distillation_settings_are_one_line_errors(teacher, toy_rows_module):
    data = _data(toy_rows_module)
    for kw, needle in [(dict(distill_weight=0), "distill_weight (--distill-weight) must be above 0 and at most 1"),
                       (dict(distill_weight=1.5), "at most 1"),
                       (dict(distill_temperature=0.0), "--distill-temperature"),
                       (dict(distill_temperature=float("inf")), "finite")]:
        with pytest.raises(TextmakerError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            TextClassifier.create(data, teachers=teacher, **kw, **AWE)
    with pytest.raises(TextmakerError, match="at least one teacher"):
        TextClassifier.create(data, teachers=[], **AWE)
    with pytest.raises(TextmakerError, match="teacher 1 is a str, not a trained text classifier"):
        TextClassifier.create(data, teachers=["model_dir"], **AWE)
    other = TextDataset.from_lists([t for t, _ in toy_rows_module], ["a" if i % 2 else "b" for i in
                                                                       range(len(toy_rows_module))])
    with pytest.raises(TextmakerError, match=r"knows the labels \['neg', 'pos'\], the training data has \['a', 'b'\]"):
        TextClassifier.create(other, teachers=teacher, **AWE)


@pytest.mark.encoder
def test_minilm_teaches_the_word_embedding_model_through_the_cli(minilm_clf, sample_train, tmp_path, capsys):
    """The real encoder as the teacher, saved and read back from its directory as `--teacher` does."""
    from textmaker.cli import main

    minilm_clf.save(tmp_path / "teacher")
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in zip(sample_train.texts,
                                                                                  sample_train.labels)))
    args = ["classify", "train", str(train), "--text-column", "sentence", "--model", "average_word_embedding",
            "--quiet"]
    assert main(args + ["--teacher", str(tmp_path / "teacher"), "--distill-weight", "1", "--distill-temperature",
                        "1", "--output", str(tmp_path / "student")]) == 0
    assert main(args + ["--output", str(tmp_path / "alone")]) == 0
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["distillation"] == {"teachers": ["minilm_l6_en_uncased"], "weight": 1.0, "temperature": 1.0}
    # How far each model's probabilities are from MiniLM's on the training texts, which the student
    # was taught to match. Measured when written: KL 0.015 against 1.20 for the model trained alone
    # (hard labels make the word-embedding model overconfident where MiniLM hesitates).
    target = minilm_clf.predict_proba(sample_train.texts)

    def kl(name):
        q = TextClassifier.load(tmp_path / name).predict_proba(sample_train.texts)
        return float(np.mean(np.sum(target * (np.log(target) - np.log(q)), 1)))

    assert kl("student") < kl("alone") / 4, (kl("student"), kl("alone"))
    capsys.readouterr()
    assert main(args + ["--distill-weight", "0.3", "--output", str(tmp_path / "x")]) == 2
    assert "--distill-weight and --distill-temperature apply with --teacher MODEL_DIR" in capsys.readouterr().err
    assert main(args + ["--teacher", str(tmp_path / "nothing"), "--output", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"textmaker: error: --teacher {tmp_path / 'nothing'}: ") and "\n" not in err
    assert main(args + ["--teacher", str(tmp_path / "teacher"), "--distill-weight", "2",
                        "--output", str(tmp_path / "z")]) == 2
    assert "distill_weight (--distill-weight) must be above 0 and at most 1, got 2.0" in capsys.readouterr().err
