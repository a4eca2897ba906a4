"""Task.average and `textmaker average`: one model from several fine-tuned ones."""

import copy
import json

import numpy as np
import pytest
import torch

from textmaker import TextClassifier, TextDataset
from textmaker.errors import TextmakerError
from textmaker.tasks.base import Task
from textmaker.text.preprocessor import BertPreprocessor


@pytest.fixture(scope="module")
def second_seed(sample_train):
    """minilm_clf's training again with seed 1: another head initialisation, order and dropout."""
    train, val = sample_train.sample(600, seed=1).split(0.8, seed=0)
    return TextClassifier.create(train, val, epochs=4, seq_len=64, seed=1, progress=False)


@pytest.mark.encoder
def test_the_average_of_two_seeds_is_their_mean_and_a_working_model(minilm_clf, second_seed, sample_test):
    avg = TextClassifier.average([minilm_clf, second_seed])
    a, b, m = (x.network.state_dict() for x in (minilm_clf, second_seed, avg))
    for k in ("backbone.encoder.layer.5.output.dense.weight", "classifier.weight", "backbone.pooler.dense.bias"):
        assert torch.allclose(m[k], (a[k].double() + b[k].double()).div(2).float(), atol=1e-7), k
    assert not torch.equal(m["classifier.weight"], a["classifier.weight"])
    # the members themselves are untouched
    assert torch.equal(minilm_clf.network.state_dict()["classifier.weight"], a["classifier.weight"])
    accuracy = {n: x.evaluate(sample_test)["accuracy"]
                for n, x in (("a", minilm_clf), ("b", second_seed), ("avg", avg))}
    # fine-tuned from one encoder, the two land close enough for their mean to classify as well as
    # they do (measured when written, AMD EPYC, bf16: 82.67% and 83.67%, the average 83.67%)
    assert accuracy["avg"] >= min(accuracy["a"], accuracy["b"]) - 0.02, accuracy
    assert avg.config["averaged_from"] == [{"model": "model 1", "seed": 0}, {"model": "model 2", "seed": 1}]
    assert avg.history == [] and avg.metrics == {}
    same = TextClassifier.average([minilm_clf, minilm_clf])
    texts = sample_test.texts[:40]
    assert np.allclose(same.predict_proba(texts), minilm_clf.predict_proba(texts), atol=1e-6)


@pytest.mark.encoder
def test_textmaker_average_writes_a_model_directory(minilm_clf, second_seed, sample_test, tmp_path, capsys):
    from textmaker.cli import main

    minilm_clf.save(tmp_path / "s0")
    second_seed.save(tmp_path / "s1")
    assert main(["average", str(tmp_path / "s0"), str(tmp_path / "s1"), "--output", str(tmp_path / "avg")]) == 0
    config = json.loads((tmp_path / "avg" / "config.json").read_text())
    assert [m["seed"] for m in config["averaged_from"]] == [0, 1]
    assert config["averaged_from"][1]["model"] == str(tmp_path / "s1")
    assert config["verification_sample"]["origin"] == f"validation data for {tmp_path / 's0'} only"
    loaded = TextClassifier.load(tmp_path / "avg")
    expected = TextClassifier.average([minilm_clf, second_seed]).predict_proba(sample_test.texts[:40])
    assert np.allclose(loaded.predict_proba(sample_test.texts[:40]), expected, atol=1e-6)
    capsys.readouterr()
    # nothing made is overwritten, and one member is not an average
    assert main(["average", str(tmp_path / "s0"), str(tmp_path / "s1"), "--output", str(tmp_path / "avg")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["average", str(tmp_path / "s0"), "--output", str(tmp_path / "one")]) == 2
    assert "at least two model directories" in capsys.readouterr().err


@pytest.mark.encoder
def test_members_that_cannot_be_averaged_are_refused_by_name(minilm_clf):
    net, pre, labels, config = minilm_clf.network, minilm_clf.preprocessor, minilm_clf.label_names, minilm_clf.config
    cases = [
        (TextClassifier(None, pre, labels, config, runner=minilm_clf.runner),
         "model 2 is an export; average the trained model directories instead"),
        (TextClassifier(net, BertPreprocessor(pre.tokenizer, 32), labels, config),
         "model 2's tokenizer differs from model 1's"),
        (TextClassifier(net, pre, ["bad", "good"], config),
         r"model 2 has the labels \['bad', 'good'\], model 1 \['negative', 'positive'\]"),
    ]
    other = copy.deepcopy(net)
    other.classifier = torch.nn.Linear(384, 2, bias=False)
    cases.append((TextClassifier(other, pre, labels, config),
                  r"model 2's weights differ from model 1's \(classifier.bias: None against \(2,\)\)"))
    for member, message in cases:
        with pytest.raises(TextmakerError, match=message):
            TextClassifier.average([minilm_clf, member])
    with pytest.raises(TextmakerError, match="at least two"):
        Task.average([minilm_clf])
    with pytest.raises(TextmakerError, match="1 names for 3 models: give one name per model"):
        Task.average([minilm_clf, minilm_clf, minilm_clf], ["only one"])


def _flipped(clf):
    """clf with its head negated: it predicts the other class wherever clf is sure."""
    net = copy.deepcopy(clf.network)
    with torch.no_grad():
        net.classifier.weight.neg_()
        net.classifier.bias.neg_()
    return TextClassifier(net, clf.preprocessor, clf.label_names, clf.config)


@pytest.mark.encoder
def test_a_checked_average_records_every_score_and_is_refused_below_its_best_member(minilm_clf, sample_test):
    same = TextClassifier.average([minilm_clf, minilm_clf], ["a", "b"], check=sample_test)
    accuracy = minilm_clf.evaluate(sample_test)["accuracy"]
    members = [{"model": "a", "score": accuracy}, {"model": "b", "score": accuracy}]
    assert same.config["averaged_check"] == {"data": sample_test.source, "metric": "accuracy", "members": members,
                                             "average": accuracy}
    flipped = _flipped(minilm_clf)
    assert flipped.evaluate(sample_test)["accuracy"] < 0.5 < accuracy  # the member the check must not let pass
    with pytest.raises(TextmakerError) as e:
        TextClassifier.average([flipped, minilm_clf], ["flipped", "good"], check=sample_test)
    assert str(e.value).startswith(f"{sample_test.source}: the average's accuracy ")
    assert str(e.value).endswith(f"is below good's {100 * accuracy:.2f}%; keep good, average greedily "
                                f"(--greedy) or without the check")
    assert TextClassifier.average([flipped, minilm_clf]).config.get("averaged_check") is None  # unchecked: as asked


@pytest.mark.encoder
def test_textmaker_average_check_prints_the_scores_and_writes_nothing_when_it_fails(minilm_clf, tmp_path, capsys):
    from tests.conftest import SAMPLE
    from textmaker.cli import main

    test_file = SAMPLE / "sst2_sample_test.tsv"
    minilm_clf.save(tmp_path / "good")
    _flipped(minilm_clf).save(tmp_path / "flipped")
    capsys.readouterr()
    assert main(["average", str(tmp_path / "good"), str(tmp_path / "good"), "--check", str(test_file),
                 "--text-column", "sentence", "--output", str(tmp_path / "avg")]) == 0
    out = capsys.readouterr().out.splitlines()
    config = json.loads((tmp_path / "avg" / "config.json").read_text())
    accuracy = config["averaged_check"]["average"]
    assert out[0] == f"accuracy on {test_file}" and out[-1] == f"  {accuracy:10.4f}  average" and len(out) == 4
    assert accuracy == TextClassifier.load(tmp_path / "good").evaluate(
        TextDataset.from_csv(test_file, text_column="sentence"))["accuracy"]
    assert main(["average", str(tmp_path / "flipped"), str(tmp_path / "good"), "--check", str(test_file),
                 "--text-column", "sentence", "--output", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"textmaker: error: {test_file}: the average's accuracy ") and "keep " in err
    assert "\n" not in err and not (tmp_path / "bad").exists()
    # --greedy writes the good member alone instead, and says so
    assert main(["average", str(tmp_path / "flipped"), str(tmp_path / "good"), "--check", str(test_file),
                 "--text-column", "sentence", "--greedy", "--output", str(tmp_path / "greedy")]) == 0
    captured = capsys.readouterr()
    assert f"averaged 1 of 2 models into {tmp_path / 'greedy'}" in captured.err
    assert [line.split()[-1] for line in captured.out.splitlines()[1:3]] == ["out", "kept"]  # "left out", "kept"
    assert _state_equal(TextClassifier.load(tmp_path / "greedy"), TextClassifier.load(tmp_path / "good"))


def test_models_trained_from_random_weights_are_refused(toy_rows):
    data = TextDataset.from_lists([t for t, _ in toy_rows], [l for _, l in toy_rows])
    for preset in ("average_word_embedding", "bert_tiny_en_uncased_random"):
        kw = dict(seq_len=16) if "bert" in preset else {}
        a, b = (TextClassifier.create(data, model=preset, epochs=1, seed=s, progress=False, **kw) for s in (0, 1))
        with pytest.raises(TextmakerError, match=f"model 1 was trained from random weights \\({preset}\\)"):
            TextClassifier.average([a, b])


@pytest.mark.encoder
def test_question_answerers_average_too(minilm_clf, tmp_path, capsys):
    from tests.conftest import SQUAD
    from textmaker import QADataset, QuestionAnswerer
    from textmaker.cli import main

    train, val = QADataset.from_squad(SQUAD).split(0.8, seed=0)
    train, val = train.sample(48, seed=0), val.sample(24, seed=0)
    kw = dict(epochs=1, seq_len=128, query_len=32, doc_stride=48, batch_size=16, progress=False)
    # trained by create_averaged (members in m/seed0, m/seed1): checked greedily on F1 over the validation data
    greedy = QuestionAnswerer.create_averaged(train, val, seeds=[0, 1], members_dir=tmp_path / "m", **kw)
    check = greedy.config["averaged_check"]
    assert check["metric"] == "f1" and check["greedy"] and check["average"] == greedy.metrics["validation"]["f1"]
    assert check["average"] >= max(m["score"] for m in check["members"])
    seed0, seed1 = (str(tmp_path / "m" / f"seed{s}") for s in (0, 1))
    assert main(["average", seed0, seed1, "--output", str(tmp_path / "avg")]) == 0
    # checked on SQuAD JSON by F1: a model averaged with itself scores as it does, so it passes
    squad = json.loads(SQUAD.read_text())
    article = next(a for a in squad["data"] if a["title"] == "Normans")
    check_file = tmp_path / "check.json"  # a few paragraphs: three evaluations, kept short
    check_file.write_text(json.dumps({**squad, "data": [{**article, "paragraphs": article["paragraphs"][:6]}]}))
    capsys.readouterr()
    assert main(["average", seed0, seed0, "--check", str(check_file),
                 "--output", str(tmp_path / "checked")]) == 0
    assert capsys.readouterr().out.startswith(f"f1 on {check_file}\n")
    check = json.loads((tmp_path / "checked" / "config.json").read_text())["averaged_check"]
    assert check["metric"] == "f1" and check["average"] == check["members"][0]["score"]
    members = [QuestionAnswerer.load(tmp_path / "m" / f"seed{s}") for s in (0, 1)]
    avg = QuestionAnswerer.load(tmp_path / "avg")
    w = [m.network.state_dict()["qa_outputs.weight"] for m in members]
    assert torch.allclose(avg.network.state_dict()["qa_outputs.weight"], (w[0] + w[1]) / 2, atol=1e-7)
    assert avg.config["windows"] == {"query_len": 32, "doc_stride": 48}  # the inference settings, kept
    report = avg.evaluate(val)
    assert report["total"] == 24 and 0 <= report["f1"] <= 100
    for e in val.examples[:5]:
        assert avg.answer(e.question, e.context).text in e.context
    # a member of the other task is refused by name, in one line
    minilm_clf.save(tmp_path / "classifier")
    capsys.readouterr()
    assert main(["average", seed0, str(tmp_path / "classifier"), "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"textmaker: error: {tmp_path / 'classifier'} holds a text_classifier model, {seed0} "
                   f"a question_answerer: average models of one task"), err


@pytest.fixture(scope="module")
def small_split(sample_train):
    """120 real SST-2 sentences to train on and 40 to validate on: members train in seconds."""
    return sample_train.sample(160, seed=2).split(0.75, seed=0)


SMALL = dict(epochs=2, seq_len=32, batch_size=16, precision="fp32", progress=False)


def _state_equal(a, b) -> bool:
    a, b = a.network.state_dict(), b.network.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.encoder
def test_create_averaged_trains_each_seed_and_keeps_the_members_that_help(small_split, tmp_path):
    train, val = small_split
    avg = TextClassifier.create_averaged(train, val, seeds=[0, 1, 2], members_dir=tmp_path / "m", **SMALL)
    names = [str(tmp_path / "m" / f"seed{s}") for s in (0, 1, 2)]
    members = [TextClassifier.load(n) for n in names]
    assert [m.config["training"]["seed"] for m in members] == [0, 1, 2]
    check = avg.config["averaged_check"]
    assert check["greedy"] is True and check["metric"] == "accuracy" and check["data"] == val.source
    scores = [m.evaluate(val)["accuracy"] for m in members]
    assert [c["score"] for c in check["members"]] == scores and [c["model"] for c in check["members"]] == names
    assert check["members"][int(np.argmax(scores))]["kept"]  # the greedy soup starts from the best member
    assert check["average"] >= max(scores)
    assert avg.metrics["validation"]["accuracy"] == check["average"] == avg.evaluate(val)["accuracy"]
    for c in check["members"]:  # a member is left out only where the average with it scored lower
        assert c["kept"] or c["score_with"] < check["average"]
    kept = [m for m, c in zip(members, check["members"]) if c["kept"]]
    kept_names = [c["model"] for c in check["members"] if c["kept"]]
    assert sorted(a["model"] for a in avg.config["averaged_from"]) == kept_names
    mean, states = avg.network.state_dict(), [m.network.state_dict() for m in kept]
    for k in ("backbone.encoder.layer.5.output.dense.weight", "classifier.weight", "classifier.bias"):
        assert torch.allclose(mean[k], sum(s[k].double() for s in states).div(len(states)).float(), atol=1e-7), k
    # the validation data was held out of every member: the verification sample is theirs, not one member's
    assert avg.config["verification_sample"] == members[0].config["verification_sample"]
    with pytest.raises(TextmakerError, match="seeds: .* repeats a seed"):
        TextClassifier.create_averaged(train, val, seeds=[0, 0], **SMALL)
    with pytest.raises(TextmakerError, match="create_averaged sets seed for each member itself"):
        TextClassifier.create_averaged(train, val, seeds=[0, 1], seed=3, **SMALL)


@pytest.mark.encoder
def test_a_greedy_average_leaves_out_a_member_that_hurts(minilm_clf, sample_test):
    flipped = _flipped(minilm_clf)
    best = TextClassifier.average([flipped, minilm_clf], ["flipped", "good"], check=sample_test, greedy=True)
    assert _state_equal(best, minilm_clf)  # no average helped: the best member as it is
    check = best.config["averaged_check"]
    accuracy = minilm_clf.evaluate(sample_test)["accuracy"]
    assert [(m["model"], m["kept"]) for m in check["members"]] == [("flipped", False), ("good", True)]
    assert check["average"] == accuracy > check["members"][0]["score_with"]
    assert best.config["averaged_from"] == [{"model": "good", "seed": 0}]
    assert "averaged_check" not in minilm_clf.config  # the member itself is untouched
    both = TextClassifier.average([minilm_clf, minilm_clf], ["a", "b"], check=sample_test, greedy=True)
    assert [m["kept"] for m in both.config["averaged_check"]["members"]] == [True, True]
    with pytest.raises(TextmakerError, match="a greedy average needs held-out data"):
        TextClassifier.average([minilm_clf, minilm_clf], greedy=True)


@pytest.mark.encoder
def test_an_interrupted_averaged_run_resumes_where_it_stopped(small_split, tmp_path, monkeypatch):
    from textmaker.training import Trainer

    train, _ = small_split
    whole = TextClassifier.create_averaged(train, None, seeds=[0, 1], members_dir=tmp_path / "whole", **SMALL)
    real_checkpoint = Trainer._checkpoint

    def checkpoint_then_die(self, *args, **kwargs):  # seed 1 is killed after its first epoch's checkpoint
        real_checkpoint(self, *args, **kwargs)
        if self.checkpoint_dir.parent.name == "seed1":
            raise KeyboardInterrupt

    run = tmp_path / "run"
    monkeypatch.setattr(Trainer, "_checkpoint", checkpoint_then_die)
    with pytest.raises(KeyboardInterrupt):
        TextClassifier.create_averaged(train, None, seeds=[0, 1], members_dir=run, **SMALL)
    monkeypatch.undo()
    assert (run / "seed0" / "config.json").is_file()
    assert (run / "seed1" / "checkpoints" / "trainer_state.json").is_file()
    real_create, trained = TextClassifier.create.__func__, []

    def counted_create(cls, *args, **kwargs):
        trained.append((kwargs["seed"], kwargs["resume"]))
        return real_create(cls, *args, **kwargs)

    monkeypatch.setattr(TextClassifier, "create", classmethod(counted_create))
    resumed = TextClassifier.create_averaged(train, None, seeds=[0, 1], members_dir=run, resume=True, **SMALL)
    assert trained == [(1, True)]  # seed 0 loaded as it was saved; seed 1 continued from its checkpoint
    assert _state_equal(resumed, whole)
    assert [m["model"] for m in resumed.config["averaged_from"]] == [str(run / "seed0"), str(run / "seed1")]
    assert "averaged_check" not in resumed.config  # no validation data: the plain mean
    with pytest.raises(TextmakerError, match="seed0: holds a model trained with epochs 2, not 3; resume with the"):
        TextClassifier.create_averaged(train, None, seeds=[0, 1], members_dir=run, resume=True,
                                       **{**SMALL, "epochs": 3})
    assert (TextClassifier.load(run / "seed0").config["member_recipe"] == TextClassifier.load(run / "seed1").config[
        "member_recipe"]) and "member_recipe" not in resumed.config
    other = train.sample(len(train) - 1, seed=0)  # one sentence fewer: refused before anything trains
    with pytest.raises(TextmakerError, match="seed0: holds a model trained on other data or with other options"):
        TextClassifier.create_averaged(other, None, seeds=[0, 1], members_dir=run, resume=True, **SMALL)
    with pytest.raises(TextmakerError, match="seed0: holds a model trained on other data or with other options"):
        TextClassifier.create_averaged(train, None, seeds=[0, 1], members_dir=run, resume=True, **SMALL, dropout=0.2)
    (run / "seed1" / "config.json").write_text((run / "seed0" / "config.json").read_text())
    with pytest.raises(TextmakerError, match="seed1: holds a model trained with seed 0, not 1"):
        TextClassifier.create_averaged(train, None, seeds=[0, 1], members_dir=run, resume=True, **SMALL)


@pytest.mark.encoder
def test_textmaker_train_seeds_writes_the_average_beside_its_members(small_split, tmp_path, capsys):
    from tests.conftest import write_tsv
    from textmaker.cli import main

    train, _ = small_split
    data = write_tsv(tmp_path / "train.tsv", list(zip(train.texts, train.labels)))
    out = tmp_path / "model"
    argv = ["classify", "train", str(data), "--text-column", "sentence", "--seeds", "0,1", "--epochs", "1",
            "--seq-len", "32", "--precision", "fp32", "--quiet", "--output", str(out)]
    assert main(argv) == 0
    assert "averaged 2 seeds without a check (no validation data)" in capsys.readouterr().err
    avg, members = TextClassifier.load(out), [TextClassifier.load(out / "members" / f"seed{s}") for s in (0, 1)]
    assert _state_equal(avg, TextClassifier.average(members))
    assert [m["seed"] for m in avg.config["averaged_from"]] == [0, 1]
    # finished: --resume trains nothing (no member is written again), keeps the members and writes the same average
    inodes = [(out / "members" / f"seed{s}" / "model.safetensors").stat().st_ino for s in (0, 1)]
    assert main(argv + ["--resume"]) == 0
    assert _state_equal(TextClassifier.load(out), avg) and (out / "members" / "seed1" / "model.safetensors").is_file()
    assert [(out / "members" / f"seed{s}" / "model.safetensors").stat().st_ino for s in (0, 1)] == inodes
    assert main(argv) == 2  # nothing made is overwritten
    assert "--overwrite" in capsys.readouterr().err
    # --overwrite with other seeds replaces the whole model: seed 0's member goes with the old average
    assert main([a if a != "0,1" else "1,2" for a in argv] + ["--overwrite"]) == 0
    assert sorted(p.name for p in (out / "members").iterdir()) == ["seed1", "seed2"]
    assert [m["seed"] for m in TextClassifier.load(out).config["averaged_from"]] == [1, 2]
