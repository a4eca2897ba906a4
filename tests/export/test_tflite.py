"""TFLite export: converted by litert-torch, run by the real LiteRT interpreter, checked against PyTorch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from textmaker import QADataset, QuestionAnswerer, TextClassifier, TextDataset
from textmaker.errors import TextmakerError
from textmaker.export import ExportedModel, Tolerance

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def tiny_bert():
    good = ["wonderful", "great", "superb", "brilliant"]
    bad = ["awful", "terrible", "dreadful", "boring"]
    rows = [(f"a {good[i % 4]} film {i}", "pos") for i in range(24)] + \
           [(f"a {bad[i % 4]} film {i}", "neg") for i in range(24)]
    data = TextDataset.from_lists([t for t, _ in rows], [l for _, l in rows])
    clf = TextClassifier.create(data, model="bert_tiny_en_uncased_random", epochs=8, seq_len=32,
                                learning_rate=1e-3, progress=False)
    return clf, data


def test_float32_file_has_fixed_shapes_and_matches_pytorch(tiny_bert, tmp_path):
    clf, data = tiny_bert
    meta = clf.export(tmp_path / "t", "tflite", representative_data=data, verbose=False)
    assert {p.name for p in (tmp_path / "t").iterdir()} == {"model.tflite", "vocab.txt", "labels.txt",
                                                            "metadata.json"}
    assert all(i["shape"] == [1, 32] and i["dtype"] == "int32" for i in meta["inputs"])
    assert meta["verification"]["label_agreement"] == 1.0 and meta["verification"]["max_abs_logit_diff"] < 1e-3
    exported = ExportedModel.load(tmp_path / "t")
    texts = ["a superb film", "a dreadful boring film"]
    assert np.allclose(exported.predict_proba(texts), clf.predict_proba(texts), atol=1e-4)
    assert json.loads((tmp_path / "t" / "metadata.json").read_text())["format"] == "tflite"


@pytest.mark.parametrize("mode", ["float16", "dynamic", "int8"])
def test_quantized_files_are_smaller_and_verified_or_refused(tiny_bert, tmp_path, mode):
    clf, data = tiny_bert
    loose = Tolerance(min_agreement=0.9, max_metric_drop=10.0)
    try:
        meta = clf.export(tmp_path / mode, "tflite", mode, representative_data=data, tolerance=loose, verbose=False)
    except TextmakerError as e:  # refused loudly, with its figures, leaving nothing
        assert "does not match the trained model" in str(e) and not (tmp_path / mode).exists()
        pytest.skip(f"{mode} refused by verification: {e}")
    fp32 = 4 * sum(p.numel() for p in clf.network.parameters())
    # int8 quantizes the fully-connected layers only: the embedding tables stay float.
    assert meta["size_bytes"] < {"float16": 0.55, "dynamic": 0.4, "int8": 1.0}[mode] * fp32
    assert meta["quantization"] == mode and meta["verification"]["label_agreement"] >= 0.9


@pytest.mark.encoder
def test_minilm_dynamic_int8_tflite(minilm_clf, sample_test, tmp_path):
    meta = minilm_clf.export(tmp_path / "dyn", "tflite", "dynamic", representative_data=sample_test,
                             tolerance=Tolerance(min_agreement=0.97, max_metric_drop=2.0), verbose=False)
    v = meta["verification"]
    assert v["samples"] == 300 and v["label_agreement"] >= 0.97
    assert meta["size_bytes"] <= 0.30 * 4 * 22.7e6
    report = ExportedModel.load(tmp_path / "dyn").evaluate(sample_test)
    assert report["accuracy"] == pytest.approx(v["exported_accuracy"])


def test_qa_tflite_windows_at_fixed_length(tmp_path):
    ctx = "The Normans were descended from Norse raiders. They settled in Normandy in the 10th century. " * 5
    data = QADataset.from_records([{"id": str(i), "question": "Where did they settle?", "context": ctx,
                                    "answers": ["Normandy"]} for i in range(6)])
    qa = QuestionAnswerer.create(data, model="bert_tiny_en_uncased_random", epochs=1, seq_len=64, query_len=16,
                                 doc_stride=24, progress=False)
    meta = qa.export(tmp_path / "qa", "tflite", representative_data=data, verbose=False)
    assert meta["verification"]["label_agreement"] == 1.0
    exported = ExportedModel.load(tmp_path / "qa")
    a, b = exported.answer("Where did they settle?", ctx), qa.answer("Where did they settle?", ctx)
    assert (a.start, a.end) == (b.start, b.end)


def test_missing_extra_names_the_pip_command_and_writes_nothing(tiny_bert, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litert_torch" else real(name, *a))
    clf, data = tiny_bert
    with pytest.raises(TextmakerError, match=r"pip install 'textmaker\[tflite\]'"):
        clf.export(tmp_path / "t", "tflite", verbose=False)
    assert not (tmp_path / "t").exists() and list(tmp_path.iterdir()) == []


def test_conversion_does_not_flood_the_terminal(tiny_bert, tmp_path, capfd):
    clf, data = tiny_bert
    clf.export(tmp_path / "t", "tflite", "dynamic", representative_data=data)
    out, err = capfd.readouterr()
    assert "[START]" not in out + err
    assert "exported" in err and "agreement with PyTorch" in err


def test_importing_the_converter_is_quiet():
    # In a fresh interpreter: this test session imported litert_torch already (importorskip).
    code = "from textmaker.export.tflite_format import _import_litert_torch; _import_litert_torch()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout + done.stderr == ""
