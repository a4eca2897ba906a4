import json
import subprocess
import sys

import pytest

from tests.conftest import write_tsv
from textmaker.cli import main


@pytest.fixture
def toy_files(tmp_path, toy_rows):
    return write_tsv(tmp_path / "train.tsv", toy_rows), write_tsv(tmp_path / "test.tsv", toy_rows[:20])


def test_train_evaluate_predict(toy_files, tmp_path, capsys):
    train, test = toy_files
    out = tmp_path / "model"
    assert main(["classify", "train", str(train), "--text-column", "sentence", "--model", "average_word_embedding",
                 "--epochs", "20", "--validation-split", "0.2", "--output", str(out), "--quiet"]) == 0
    assert (out / "model.safetensors").is_file() and not (out / "checkpoints").exists()
    capsys.readouterr()
    assert main(["classify", "evaluate", str(out), str(test), "--text-column", "sentence", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == 1.0 and report["examples"] == 20
    assert main(["classify", "predict", str(out), "a wonderful superb movie", "an awful dull movie",
                 "--top-k", "2", "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [p["predictions"][0]["label"] for p in preds] == ["pos", "neg"]
    assert len(preds[0]["predictions"]) == 2
    assert main(["classify", "predict", str(out), "a wonderful superb movie"]) == 0
    assert capsys.readouterr().out.startswith("pos ")
    assert main(["classify", "evaluate", str(out), str(test), "--text-column", "sentence", "--json",
                 "--precision", "bf16"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0  # the same answers computed in bf16


def test_jsonl_and_folder_inputs(tmp_path, toy_rows, capsys):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps({"review": t, "y": l}) for t, l in toy_rows))
    out = tmp_path / "m"
    assert main(["classify", "train", str(jsonl), "--text-column", "review", "--label-column", "y",
                 "--model", "average_word_embedding", "--epochs", "2", "--output", str(out), "--quiet"]) == 0
    folder = tmp_path / "folder"
    for i, (text, label) in enumerate(toy_rows[:10]):
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"{i}.txt").write_text(text)
    capsys.readouterr()
    assert main(["classify", "evaluate", str(out), str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 10


@pytest.mark.parametrize("argv,expected", [
    (["classify", "train", "MISSING.tsv", "--output", "x"], "MISSING.tsv: no such file"),
    (["classify", "evaluate", "NOT_A_MODEL", "t.tsv"], "NOT_A_MODEL: no such model directory"),
    (["classify", "train", "{train}", "--output", "{tmp}/o"], "no text column 'text'; the columns are"),
    (["classify", "train", "{train}", "--text-column", "sentence", "--model", "no_such_preset", "--output", "{tmp}/o"],
     "unknown model 'no_such_preset'"),
    (["classify", "train", "{train}", "--text-column", "sentence", "--model", "bert_tiny_en_uncased_random",
      "--frozen-layers", "3", "--output", "{tmp}/o"], "frozen_layers (--frozen-layers) must be from 0 to 2"),
    (["classify", "train", "{train}", "--seed", "1", "--seeds", "0,1", "--output", "{tmp}/o"],
     "give --seed (one model) or --seeds (several, averaged), not both"),
    (["qa", "train", "{train}", "--seeds", "3", "--output", "{tmp}/o"], "--seeds: give two or more seeds to average"),
    (["classify", "train", "{train}", "--seeds", "0,1,0", "--output", "{tmp}/o"], "--seeds: [0, 1, 0] repeats a seed"),
    (["classify", "train", "{train}", "--seeds", "-1,2", "--output", "{tmp}/o"],
     "--seeds: seeds are whole numbers from 0, got [-1, 2]"),
    (["qa", "train", "{train}", "--seed", "-1", "--output", "{tmp}/o"], "seed (--seed) must be a whole number at least 0"),
    (["average", "{train}", "{train}", "--greedy", "--output", "{tmp}/o"], "--greedy needs --check FILE"),
])
def test_errors_are_one_line_without_traceback(argv, expected, toy_files, tmp_path):
    argv = [a.format(train=toy_files[0], tmp=tmp_path) for a in argv]
    r = subprocess.run([sys.executable, "-m", "textmaker.cli", *argv], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("textmaker: error: ") and expected in lines[-1], r.stderr


def test_resume_continues_from_checkpoints(toy_files, tmp_path):
    train, _ = toy_files
    out = tmp_path / "model"
    args = ["classify", "train", str(train), "--text-column", "sentence", "--model", "average_word_embedding",
            "--epochs", "2", "--output", str(out), "--quiet"]
    assert main(args) == 0
    assert main(args + ["--resume"]) == 2  # a finished run leaves no checkpoint to resume


def test_presets_lists_the_default(capsys):
    assert main(["presets"]) == 0
    assert "minilm_l6_en_uncased" in capsys.readouterr().out


def test_training_flags_reach_the_trainer(toy_files, tmp_path):
    train, _ = toy_files
    out = tmp_path / "model"
    assert main(["classify", "train", str(train), "--text-column", "sentence", "--model", "bert_tiny_en_uncased_random",
                 "--seq-len", "16", "--epochs", "1", "--batch-size", "4", "--validation-split", "0.2",
                 "--eval-every", "2", "--precision", "fp32", "--output", str(out), "--quiet"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert [p["step"] for p in history[0]["evaluations"]] == list(range(2, history[0]["step"], 2))
    settings = json.loads((out / "config.json").read_text())
    training = settings.get("training") or settings["textmaker"]["training"]
    assert training["eval_every_steps"] == 2 and training["precision"] == "fp32"
    assert training["train_word_embeddings"] is True  # a random-weight encoder learns its table


def test_seeds_help_quotes_what_averaging_did_for_its_own_task(capsys):
    def help_of(*argv):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        return " ".join(capsys.readouterr().out.split())

    classify, qa = help_of("classify", "train"), help_of("qa", "train")
    assert "On SST-2" in classify and "SQuAD" not in classify
    assert "On SQuAD" in qa and "give validation data" in qa and "SST-2" not in qa
