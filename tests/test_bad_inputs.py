"""The catalogue of bad inputs, hostile files and faults: each gets one line that names the file,
line, field or flag and says what to do; the exit code says it failed; nothing that existed
before is deleted or changed."""

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest

from tests.conftest import write_tsv
from textmaker.cli import main

AWE = ["--model", "average_word_embedding", "--quiet"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (hidden ones included) and its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*")) if not p.is_symlink()}


@pytest.fixture(scope="module")
def work(tmp_path_factory, toy_rows_module):
    root = tmp_path_factory.mktemp("catalogue")
    write_tsv(root / "train.tsv", toy_rows_module)
    assert main(["classify", "train", str(root / "train.tsv"), "--text-column", "sentence", "--epochs", "2",
                 "--output", str(root / "model"), *AWE]) == 0
    return root


def copy_model(work: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(work / "model", tmp_path / "model"))


def fails(argv, capsys, *expected: str, code: int = 2) -> str:
    """Run the CLI; it must exit with `code` and print one error line holding every `expected`."""
    before = capsys.readouterr()
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("textmaker: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err and before is not None
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def train(work, *extra, output=None):
    return ["classify", "train", work / "train.tsv", "--text-column", "sentence", "--output",
            output or work / "never-written", *AWE, *extra]


# ---- flags: checked before any data is read, each error naming its flag ----

@pytest.mark.parametrize("flags,expected", [
    (["--epochs", "-1"], "epochs (--epochs) must be a whole number at least 1, got -1"),
    (["--epochs", "0"], "epochs (--epochs)"),
    (["--batch-size", "0"], "batch_size (--batch-size)"),
    (["--batch-size", "-3"], "batch_size (--batch-size)"),
    (["--learning-rate", "0"], "learning_rate (--learning-rate) must be a finite number above 0"),
    (["--learning-rate", "nan"], "learning_rate (--learning-rate)"),
    (["--learning-rate=-1e-3"], "learning_rate (--learning-rate)"),
    (["--seq-len", "-5"], "seq_len (--seq-len) must be a whole number from 2"),
    (["--seq-len", "1"], "seq_len (--seq-len)"),
    (["--validation-split", "1.5"], "validation_split (--validation-split) must be above 0 and below 1"),
    (["--validation-split", "0"], "validation_split (--validation-split)"),
    (["--dropout", "1.0"], "dropout (--dropout) must be at least 0 and below 1"),
    (["--early-stopping", "0"], "early_stopping_patience (--early-stopping)"),
    (["--validation", "x.tsv", "--validation-split", "0.2"], "give --validation or --validation-split, not both"),
    (["--gradient-accumulation", "0"], "gradient_accumulation_steps (--gradient-accumulation)"),
    (["--max-steps", "-2"], "max_steps (--max-steps)"),
    (["--eval-every", "0"], "eval_every_steps (--eval-every)"),
])
def test_bad_flags_are_refused_before_the_data_is_read(work, capsys, flags, expected, monkeypatch):
    from textmaker.data import TextDataset

    monkeypatch.setattr(TextDataset, "from_path", lambda *a, **k: pytest.fail("the data was read"))
    fails(train(work, *flags), capsys, expected)
    assert not (work / "never-written").exists()


def test_fp16_on_a_cpu_without_its_arithmetic_is_refused_before_the_data_is_read(work, capsys, monkeypatch):
    from textmaker import precision
    from textmaker.data import TextDataset

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    monkeypatch.setattr(TextDataset, "from_path", lambda *a, **k: pytest.fail("the data was read"))
    fails(train(work, "--precision", "fp16"), capsys, "precision fp16 (--precision): this CPU has no fp16 arithmetic",
          "use bf16, fp32 or auto")
    fails(["classify", "evaluate", work / "model", work / "train.tsv", "--precision", "fp16"], capsys,
          "precision fp16 (--precision)")


def test_bert_seq_len_beyond_the_encoder_and_unknown_model(work, capsys, monkeypatch):
    fails(["classify", "train", work / "train.tsv", "--output", work / "o", "--seq-len", "100000"], capsys,
          "seq_len (--seq-len) must be a whole number from 8 to 512")
    fails(["classify", "train", work / "MISSING.tsv", "--model", "no_such_preset", "--output", work / "o"], capsys,
          "unknown model 'no_such_preset'")  # the model, before the missing data file


@pytest.mark.parametrize("flags,expected", [
    (["--min-agreement", "1.5"], "--min-agreement) must be in (0, 1]"),
    (["--min-agreement", "0"], "--min-agreement) must be in (0, 1]"),
    (["--max-drop", "-1"], "--max-drop) must be >= 0 points"),
])
def test_bad_export_tolerances(work, capsys, flags, expected):
    fails(["export", work / "model", "--output", work / "exp", *flags], capsys, expected)
    assert not (work / "exp").exists()


# ---- outputs: nothing textmaker did not make is ever deleted ----

def test_output_that_is_a_file_is_refused(work, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    fails(train(work, output=tmp_path / "notes.txt"), capsys, "is a file")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_output_that_is_the_current_folder_is_refused(work, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    for output in (".", ".."):
        fails(["classify", "train", work / "train.tsv", "--text-column", "sentence", "--output", output, *AWE],
              capsys, "is the current folder or one above it")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["train", "export"])
def test_output_folder_with_someone_elses_files_is_refused(work, tmp_path, capsys, command):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    before = snapshot(tmp_path)
    argv = (["classify", "train", work / "train.tsv", "--text-column", "sentence", *AWE] if command == "train"
            else ["export", work / "model"])
    fails(argv + ["--output", tmp_path / "photos", "--overwrite"], capsys, "holds files textmaker did not make")
    assert snapshot(tmp_path) == before


def test_existing_model_needs_overwrite(work, tmp_path, capsys):
    model = copy_model(work, tmp_path)
    before = snapshot(model)
    argv = ["classify", "train", work / "train.tsv", "--text-column", "sentence", "--epochs", "1",
            "--output", model, *AWE]
    fails(argv, capsys, "already holds a textmaker model; pass --overwrite")
    assert snapshot(model) == before
    assert main([str(a) for a in argv + ["--overwrite"]]) == 0


def test_output_that_cannot_be_written_is_refused_before_training(work, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    fails(train(work, output=tmp_path / "a-file" / "model"), capsys, "cannot write")


def test_a_second_run_on_the_same_output_is_refused(work, tmp_path, capsys):
    (tmp_path / ".model.lock").write_text(str(os.getppid()))  # a live process holds it
    fails(train(work, output=tmp_path / "model"), capsys, "another textmaker run (pid", "wait for it to finish")
    assert not (tmp_path / "model").exists()


def test_a_stale_lock_of_a_dead_run_is_taken_over(work, tmp_path):
    (tmp_path / ".model.lock").write_text(str(_dead_pid()))
    assert main([str(a) for a in ["classify", "train", work / "train.tsv", "--text-column", "sentence",
                                  "--epochs", "1", "--output", tmp_path / "model", *AWE]]) == 0
    assert not (tmp_path / ".model.lock").exists()


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


def test_a_replace_killed_between_its_renames_is_recovered_on_the_next_run(work, tmp_path, capsys):
    model = copy_model(work, tmp_path)
    before = snapshot(model)
    aside = tmp_path / f".model.{_dead_pid()}.old"  # where the dead run had moved the old model
    model.rename(aside)
    (tmp_path / f".model.{_dead_pid()}.abc.partial").mkdir()  # and its unfinished new one
    assert main(["classify", "predict", str(model), "a wonderful movie"]) == 0
    assert snapshot(model) == before and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


# ---- data ----

@pytest.mark.parametrize("content,expected", [
    ("sentence,label\nok film,1\ngreat, funny film,1\n", ["line 3: 3 fields, expected 2", "quote fields"]),
    ("sentence,label\nok film,1,extra\n", ["line 2: 3 fields, expected 2"]),
    ("sentence,label\ngood\x00\x00,1\nbad,0\n", ["line 2", "NUL"]),
    ("sentence,label\ngood,1\nbad,true\n", ["line 3", "mix true/false with numbers"]),
    ("", ["the file is empty"]),
    ("review,label\ngood,1\n", ["no text column 'sentence'", "--text-column"]),
    ("sentence,label\ngood,1\nbad,1\n", ["only one class", "at least two"]),
])
def test_bad_csv(work, tmp_path, capsys, content, expected):
    (tmp_path / "d.csv").write_text(content)
    fails(["classify", "train", tmp_path / "d.csv", "--text-column", "sentence", "--output", tmp_path / "m", *AWE],
          capsys, str(tmp_path / "d.csv"), *expected)
    assert not (tmp_path / "m").exists()


def test_labels_one_and_one_point_zero_are_one_class(tmp_path):
    from textmaker.data import TextDataset

    d = TextDataset.from_lists(["a", "b", "c", "d"], [1, "1.0", " 1 ", 0])
    assert d.label_names == ["0", "1"] and d.labels == ["1", "1", "1", "0"]
    assert TextDataset.from_lists(["a", "b"], [True, "TRUE"]).labels == ["true", "true"]


@pytest.mark.parametrize("line,expected", [
    ('{"text": "good", "label": "a\\nb"}', ["line 2", "spans lines", "one line of text"]),
    ('{"text": 42, "label": "pos"}', ["line 2", "the text is a int, not a string"]),
    ('{"text": "good", "label": "pos"', ["line 2: not valid JSON"]),
    ('["good", "pos"]', ["line 2: expected a JSON object per line"]),
])
def test_bad_jsonl(tmp_path, capsys, line, expected):
    (tmp_path / "d.jsonl").write_text('{"text": "bad", "label": "neg"}\n' + line + "\n")
    fails(["classify", "train", tmp_path / "d.jsonl", "--output", tmp_path / "m", *AWE], capsys, *expected)


def test_non_utf8_file_names_the_line_and_the_flag(tmp_path, capsys):
    (tmp_path / "d.csv").write_bytes("text,label\ngood,1\ncaf\xe9,0\n".encode("latin-1"))
    fails(["classify", "train", tmp_path / "d.csv", "--output", tmp_path / "m", *AWE], capsys,
          "d.csv line 3: byte 0xe9 is not valid utf-8", "--encoding latin-1")


def test_empty_class_folder_is_refused(tmp_path, capsys):
    (tmp_path / "data" / "pos").mkdir(parents=True)
    (tmp_path / "data" / "pos" / "1.txt").write_text("great")
    (tmp_path / "data" / "neg").mkdir()
    fails(["classify", "train", tmp_path / "data", "--output", tmp_path / "m", *AWE], capsys,
          str(tmp_path / "data" / "neg"), "the class folder is empty")


def test_missing_data_file(tmp_path, capsys):
    fails(["classify", "train", tmp_path / "nope.tsv", "--output", tmp_path / "m", *AWE], capsys,
          "nope.tsv: no such file; check the path")


def test_many_classes_fold_the_summary_and_skip_the_unreadable_picture(tmp_path, capsys):
    texts = [f"text number {i}" for i in range(300)]
    labels = [f"class{i % 150}" for i in range(300)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t, "label": x}) + "\n" for t, x in zip(texts, labels)))
    assert main(["classify", "train", str(tmp_path / "d.jsonl"), "--output", str(tmp_path / "m"), "--epochs", "1",
                 "--validation-split", "0.5", *AWE]) == 0
    err = capsys.readouterr().err
    assert "... 130 more classes" in err and "warning: 150 classes" in err and len(err.splitlines()) < 40
    assert not (tmp_path / "m" / "confusion_matrix.png").exists()
    assert len(json.loads((tmp_path / "m" / "metrics.json").read_text())["validation"]["confusion_matrix"]) == 150


def test_a_hundred_thousand_classes_report_without_a_dense_matrix():
    import numpy as np

    from textmaker.metrics import classification_report

    y = np.arange(200) % 100_000
    r = classification_report(y, y[::-1], [f"c{i}" for i in range(100_000)])
    assert "confusion_matrix" not in r and len(r["confusion_pairs"]) == 200


@pytest.mark.parametrize("squad,expected", [
    ({"data": [{"title": "t", "paragraphs": {"context": "x"}}]}, "data[0].paragraphs is an object, expected a list"),
    ({"data": [{"title": "t", "paragraphs": [{"context": "x", "qas": {"id": "q"}}]}]},
     "data[0].paragraphs[0].qas is an object, expected a list"),
    ({"data": ["an article"]}, "data[0] is a string, expected an article object"),
    ({"data": [{"paragraphs": [{"context": "Tesla was born in 1856.", "qas": [
        {"id": "q1", "question": "When?", "answers": [{"text": "1856", "answer_start": 3}]}]}]}]},
     "question q1: answer '1856' is not at answer_start 3"),
    ({"articles": []}, "not SQuAD JSON"),
])
def test_bad_squad(tmp_path, capsys, squad, expected):
    (tmp_path / "s.json").write_text(json.dumps(squad))
    fails(["qa", "train", tmp_path / "s.json", "--output", tmp_path / "m", "--model", "bert_tiny_en_uncased_random",
           "--quiet"], capsys, expected)


# ---- model directories ----

def _edit_config(model: Path, edit) -> None:
    config = json.loads((model / "config.json").read_text())
    edit(config)
    (model / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("damage,expected", [
    (lambda m: (m / "model.safetensors").write_bytes((m / "model.safetensors").read_bytes()[:100]),
     "model.safetensors: not a readable safetensors file"),
    (lambda m: (m / "model.safetensors").write_bytes(b"\x00" * 64), "model.safetensors: not a readable"),
    (lambda m: (m / "config.json").write_text("{not json"), "config.json: not valid JSON"),
    (lambda m: _edit_config(m, lambda c: c.pop("preprocessor")), "config.json: a required setting is missing"),
    (lambda m: _edit_config(m, lambda c: c["backbone"].update(wordvec_dim="big")), "wordvec_dim is 'big'"),
    (lambda m: _edit_config(m, lambda c: c["backbone"].update(vocab_size=10**12)), "parameters, more than"),
    (lambda m: _edit_config(m, lambda c: c["backbone"].update(wordvec_dim=8)),
     "has shape (16,), config.json says (8,); the two files do not belong together"),
    (lambda m: _edit_config(m, lambda c: c.update(task="something")), "config.json has no known task"),
])
def test_damaged_model_directories(work, tmp_path, capsys, damage, expected):
    model = copy_model(work, tmp_path)
    damage(model)
    before = snapshot(model)
    fails(["classify", "predict", model, "a good movie"], capsys, expected)
    assert snapshot(model) == before


def test_vocab_linked_to_dev_zero_is_not_read(work, tmp_path, capsys):
    model = copy_model(work, tmp_path)
    (model / "vocab.txt").unlink()
    (model / "vocab.txt").symlink_to("/dev/zero")
    fails(["classify", "predict", model, "a good movie"], capsys, "vocab.txt: not a regular file")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_pickled_code_is_refused_and_never_runs(tmp_path, capsys):
    import torch

    from textmaker.models.bert import BertConfig

    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text(json.dumps(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                                                           num_attention_heads=2, intermediate_size=64).to_dict()))
    (enc / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    _Payload.marker = tmp_path / "pwned"
    with open(enc / "pytorch_model.bin", "wb") as f:
        pickle.dump({"w": _Payload()}, f)
    torch.manual_seed(0)
    (tmp_path / "d.tsv").write_text("text\tlabel\nhello\t1\nhello there\t0\n")
    fails(["classify", "train", tmp_path / "d.tsv", "--model", enc, "--output", tmp_path / "m", "--quiet"], capsys,
          "pytorch_model.bin: holds pickled code; textmaker loads only safetensors or weights-only files")
    assert not _Payload.marker.exists()


# ---- resume ----

def test_resume_without_a_checkpoint(work, tmp_path, capsys):
    fails(["classify", "train", work / "train.tsv", "--text-column", "sentence", "--output", tmp_path / "m",
           "--resume", *AWE], capsys, "no checkpoint to resume from; train without --resume first")


def test_resume_with_other_data_is_refused_and_the_directory_says_how_to_resume(work, tmp_path, capsys):
    from textmaker.training import Trainer

    argv = ["classify", "train", work / "train.tsv", "--text-column", "sentence", "--epochs", "3",
            "--output", tmp_path / "m", *AWE]
    real, calls = Trainer._checkpoint, []

    def die_after_first(self, *a):
        real(self, *a)
        calls.append(1)
        raise KeyboardInterrupt

    Trainer._checkpoint = die_after_first
    try:
        assert main([str(a) for a in argv]) == 130
    finally:
        Trainer._checkpoint = real
    assert "--resume" in (tmp_path / "m" / "checkpoints" / "RESUME.txt").read_text()
    other = tmp_path / "other.tsv"
    other.write_text((work / "train.tsv").read_text().replace("movie 1\t", "film 1\t"))
    fails(["classify", "train", other, "--text-column", "sentence", "--epochs", "3", "--output", tmp_path / "m",
           "--resume", *AWE], capsys, "the checkpoint was trained on other data")
    capsys.readouterr()
    assert main([str(a) for a in argv + ["--resume"]]) == 0
    assert "resuming from epoch 2, step" in capsys.readouterr().err
