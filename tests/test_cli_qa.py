import json
import subprocess
import sys

import pytest

from textmaker.cli import main

CTX = "The Normans were descended from Norse raiders. They settled in Normandy in the 10th century."


@pytest.fixture
def squad_files(tmp_path):
    qas = [{"id": f"q{i}", "question": "Where did they settle?",
            "answers": [{"text": "Normandy", "answer_start": CTX.index("Normandy")}]} for i in range(6)]
    qas += [{"id": f"w{i}", "question": "Who were they descended from?",
             "answers": [{"text": "Norse raiders", "answer_start": CTX.index("Norse raiders")}]} for i in range(6)]
    data = {"version": "1.1", "data": [{"title": t, "paragraphs": [{"context": CTX, "qas": qas[k::2]}]}
                                       for k, t in enumerate(["A", "B"])]}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data))
    return path


def test_qa_train_evaluate_predict(squad_files, tmp_path, capsys):
    out = tmp_path / "qa"
    assert main(["qa", "train", str(squad_files), "--model", "bert_tiny_en_uncased_random", "--epochs", "1",
                 "--seq-len", "64", "--query-len", "16", "--doc-stride", "16", "--frozen-layers", "1",
                 "--output", str(out), "--quiet"]) == 0
    assert (out / "model.safetensors").is_file()
    settings = json.loads((out / "config.json").read_text())
    assert (settings.get("training") or settings["textmaker"]["training"])["frozen_layers"] == 1
    capsys.readouterr()
    assert main(["qa", "evaluate", str(out), str(squad_files), "--output-dir", str(tmp_path / "ev"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"exact_match", "f1"} and metrics["total"] == 12
    assert (tmp_path / "ev" / "predictions.json").is_file()
    (tmp_path / "ctx.txt").write_text(CTX)
    assert main(["qa", "predict", str(out), "--question", "Where?", "--context-file", str(tmp_path / "ctx.txt"),
                 "--n-best", "3", "--json"]) == 0
    spans = json.loads(capsys.readouterr().out)
    assert len(spans) == 3 and all(CTX[s["start"]:s["end"]] == s["text"] for s in spans)


@pytest.mark.parametrize("content,expected", [
    ('{"data": [', "line 1 column 11: not valid JSON"),
    ("", "the file is empty"),
    ('{"data": [{"title": "t", "paragraphs": [{"context": "abc", "qas": [{"id": "x7", "question": "q?", '
     '"answers": [{"text": "zzz", "answer_start": 0}]}]}]}]}', "question x7: answer 'zzz' is not at answer_start 0"),
])
def test_qa_bad_files_are_one_line_errors(content, expected, tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(content)
    r = subprocess.run([sys.executable, "-m", "textmaker.cli", "qa", "train", str(p), "--output", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert expected in r.stderr.strip().splitlines()[-1]


def test_qa_commands_refuse_a_classifier_directory(tmp_path, capsys):
    d = tmp_path / "clf"
    d.mkdir()
    (d / "config.json").write_text('{"task": "text_classifier"}')
    (d / "model.safetensors").write_bytes(b"")
    assert main(["qa", "predict", str(d), "--question", "q", "--context", "c"]) == 2
    assert "holds a text_classifier model, not a question_answerer" in capsys.readouterr().err
