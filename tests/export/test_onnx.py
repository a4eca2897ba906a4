"""ONNX export: real files, run by the real ONNX Runtime, checked against PyTorch."""

import json
import re

import numpy as np
import pytest

from textmaker import QADataset, QuestionAnswerer, TextClassifier, TextDataset
from textmaker.cli import main
from textmaker.errors import TextmakerError
from textmaker.export import ExportedModel, QuantizationConfig, Tolerance, evaluate_exported, export

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def awe(toy_rows_module):
    data = TextDataset.from_lists([t for t, _ in toy_rows_module], [l for _, l in toy_rows_module])
    return TextClassifier.create(data, model="average_word_embedding", epochs=20, progress=False), data


def test_awe_onnx_round_trip(awe, tmp_path):
    clf, data = awe
    meta = export(clf, tmp_path / "onnx", "onnx", representative_data=data, verbose=False)
    files = {p.name for p in (tmp_path / "onnx").iterdir()}
    assert files == {"onnx", "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "labels.txt",
                     "metadata.json"}
    assert [p.name for p in (tmp_path / "onnx" / "onnx").iterdir()] == ["model.onnx"]
    saved = json.loads((tmp_path / "onnx" / "metadata.json").read_text())
    assert saved == json.loads(json.dumps(meta))
    assert saved["label_names"] == ["neg", "pos"] and saved["seq_len"] == 256 and saved["quantization"] == "none"
    assert saved["inputs"][0]["name"] == "input_ids" and "batch" in saved["inputs"][0]["shape"]
    v = saved["verification"]
    assert v["label_agreement"] == 1.0 and v["max_abs_probability_diff"] < 1e-5 and v["samples"] == 48
    exported = ExportedModel.load(tmp_path / "onnx")
    texts = ["a wonderful movie", "a boring dreadful movie", "something else entirely"]
    assert [p[0].label for p in exported.predict(texts)] == [p[0].label for p in clf.predict(texts)]
    assert np.allclose(exported.predict_proba(texts), clf.predict_proba(texts), atol=1e-5)
    assert evaluate_exported(tmp_path / "onnx", data)["accuracy"] == clf.evaluate(data)["accuracy"]


def test_an_export_is_checked_against_the_saved_fp32_weights_whatever_the_precision_asked(awe, tmp_path):
    clf, data = awe
    meta = export(clf.at_precision("bf16"), tmp_path / "onnx", "onnx", representative_data=data, verbose=False)
    assert meta["verification"]["max_abs_probability_diff"] < 1e-5  # bf16 answers differ from fp32 by ~1e-3
    with pytest.raises(TextmakerError, match="--precision.* applies to a trained model directory"):
        ExportedModel.load(tmp_path / "onnx").at_precision("bf16")


@pytest.fixture(scope="module")
def sst2_awe(sample_train):
    return TextClassifier.create(sample_train, model="average_word_embedding", progress=False)


@pytest.mark.parametrize("mode", ["float16", "dynamic", "int8"])
def test_awe_onnx_quantized_exports_are_smaller_and_agree(sst2_awe, sample_test, tmp_path, mode):
    # The AWE graph has no token_type_ids input (nothing reads it): calibration must feed only
    # the inputs the graph has.
    clf = sst2_awe
    fp32_bytes = 4 * sum(t.numel() for t in clf.network.state_dict().values())
    meta = export(clf, tmp_path / mode, "onnx", mode, representative_data=sample_test, verbose=False,
                      tolerance=Tolerance(min_agreement=0.97, max_metric_drop=2.0))
    assert [i["name"] for i in meta["inputs"]] == ["input_ids", "attention_mask"]
    assert meta["size_bytes"] < {"float16": 0.55, "dynamic": 0.30, "int8": 0.30}[mode] * fp32_bytes
    v = meta["verification"]
    assert v["samples"] == 300 and v["label_agreement"] >= 0.97
    exported = ExportedModel.load(tmp_path / mode)
    assert exported.evaluate(sample_test, batch_size=1)["accuracy"] == pytest.approx(v["exported_accuracy"])


TOLERANCE = {"none": Tolerance(), "float16": Tolerance(), "dynamic": Tolerance()}  # the defaults


@pytest.mark.encoder
@pytest.mark.parametrize("mode", ["none", "float16", "dynamic"])
def test_minilm_onnx_exports_agree_with_pytorch(minilm_clf, sample_test, tmp_path, mode):
    meta = export(minilm_clf, tmp_path / mode, "onnx", QuantizationConfig(mode), representative_data=sample_test,
                             tolerance=TOLERANCE[mode], verbose=False)
    v = meta["verification"]
    assert v["samples"] == 300 and v["label_agreement"] >= TOLERANCE[mode].min_agreement
    # Passed: no loss beyond the tolerance, or none beyond sampling noise (the sign test).
    assert v["metric_drop"] <= TOLERANCE[mode].max_metric_drop or v["loss_p_value"] >= 0.05
    fp32_size = 22.7e6 * 4
    assert meta["size_bytes"] < {"none": 1.05, "float16": 0.55, "dynamic": 0.30}[mode] * fp32_size
    exported = ExportedModel.load(tmp_path / mode)
    report = exported.evaluate(sample_test, batch_size=1)
    assert report["accuracy"] == pytest.approx(v["exported_accuracy"])
    if mode == "none":
        assert v["max_abs_probability_diff"] < 1e-4


@pytest.mark.encoder
def test_minilm_static_int8_is_really_int8_and_close(minilm_clf, sample_test, tmp_path):
    """The file is int8 (TFLite Model Maker once wrote a float file for int8: tensorflow#57619) and
    stays close to PyTorch; below the default 99% it is refused (test_failed_verification...)."""
    import onnx

    meta = export(minilm_clf, tmp_path / "int8", "onnx", "int8", representative_data=sample_test, verbose=False,
                             tolerance=Tolerance(min_agreement=0.95, max_metric_drop=3.0))
    v = meta["verification"]
    assert v["samples"] == 300 and v["label_agreement"] >= 0.95 and v["metric_drop"] <= 3.0
    assert meta["size_bytes"] < 0.40 * 22.7e6 * 4
    graph = onnx.load(str(tmp_path / "int8" / "onnx" / "model_int8.onnx")).graph
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]
    quantized_inputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    quantized_matmuls = [n for n in graph.node if n.op_type == "MatMul" and set(n.input) <= quantized_inputs]
    assert len(int8_weights) >= 6 * 4 + 1  # q, k, v, attention output per layer + word embeddings
    assert len(quantized_matmuls) == 6 * 5  # q, k, v, attention output, FFN up per layer; nothing else


def test_a_damaged_export_is_refused_with_its_figures_and_leaves_nothing(awe, tmp_path, monkeypatch):
    from textmaker.export import graph

    clf, data = awe
    real = graph.ExportGraph.forward
    # A converter fault stands in here: the exported graph's logits come out in the wrong order.
    monkeypatch.setattr(graph.ExportGraph, "forward", lambda self, *a, **k: {
        name: out.flip(-1) for name, out in real(self, *a, **k).items()})
    with pytest.raises(TextmakerError) as e:
        export(clf, tmp_path / "bad", "onnx", representative_data=data, verbose=False)
    message = str(e.value)
    assert "agreement 0.0%: 48 of 48 changed, more than a 3.0% change rate explains (p = " in message
    assert re.search(r"lost \d+\.\d\d points > 1\.00", message)
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def _change_labels_of_texts_with(monkeypatch, token_ids):
    """The exported graph swaps its two probabilities wherever one of `token_ids` is in the text."""
    import torch

    from textmaker.export import graph

    real = graph.ExportGraph.forward
    marked = torch.tensor(token_ids)

    def forward(self, *args, **kwargs):
        named = {**dict(zip(self.signature.names, args)), **kwargs}
        ids = next(named[name] for name, key in self.signature.inputs.items() if key == "input_ids").long()
        hit = (ids.unsqueeze(-1) == marked).any(-1).any(-1, keepdim=True)
        return {name: torch.where(hit, out.flip(-1), out) for name, out in real(self, *args, **kwargs).items()}

    monkeypatch.setattr(graph.ExportGraph, "forward", forward)


@pytest.mark.parametrize("numbers, min_agreement, refused", [
    ((5,), 0.97, False),  # 2 of 48 changed (95.8%): within what a 3% change rate does by chance
    ((1, 5, 9, 13), 0.97, True),  # 8 of 48 (83.3%): more than chance
    ((5,), 1.0, True),  # min_agreement=1 allows no change at all
])
def test_the_agreement_gate_refuses_more_changes_than_chance_explains(awe, tmp_path, monkeypatch, numbers,
                                                                      min_agreement, refused):
    clf, data = awe  # 48 texts, "a <word> movie <i>", each number i in one positive and one negative text
    _change_labels_of_texts_with(monkeypatch, [clf.preprocessor.tokenizer.encode(str(i))[-1] for i in numbers])
    tolerance = Tolerance(min_agreement=min_agreement, max_metric_drop=100.0)
    if refused:
        with pytest.raises(TextmakerError, match=rf"agreement \d+\.\d%: {2 * len(numbers)} of 48 changed, more than"):
            export(clf, tmp_path / "out", "onnx", representative_data=data, tolerance=tolerance, verbose=False)
        assert list(tmp_path.iterdir()) == []
    else:
        v = export(clf, tmp_path / "out", "onnx", representative_data=data, tolerance=tolerance,
                   verbose=False)["verification"]
        assert v["labels_changed"] == 2 and v["label_agreement"] == 46 / 48 and 0.05 < v["agreement_p_value"] < 1


def test_the_default_gate_refuses_from_8_changes_of_120_and_a_gate_at_1_from_the_first():
    default, exact = Tolerance(), Tolerance(min_agreement=1.0)
    assert not default.refuses_changes(120, 7) and default.refuses_changes(120, 8)
    assert default.agreement_p_value(120, 4) == pytest.approx(0.485, abs=0.005)  # 96.7%: the fixed 97% share refused it
    assert not exact.refuses_changes(500, 0) and exact.refuses_changes(500, 1)


@pytest.mark.parametrize("tolerance", [dict(min_agreement=1.01), dict(min_agreement=0), dict(max_metric_drop=-1)])
def test_tolerance_out_of_range_is_refused(tolerance):
    with pytest.raises(TextmakerError, match="min_agreement|max_metric_drop"):
        Tolerance(**tolerance)


def test_qa_onnx_answers_like_pytorch(tmp_path, capsys):
    ctx = "The Normans were descended from Norse raiders. They settled in Normandy in the 10th century. " * 6
    records = [{"id": f"q{i}", "question": q, "context": ctx, "answers": [a]}
               for i, (q, a) in enumerate([("Where did they settle?", "Normandy"),
                                          ("Who were they descended from?", "Norse raiders"),
                                          ("When did they settle?", "10th century")] * 4)]
    data = QADataset.from_records(records)
    qa = QuestionAnswerer.create(data, model="bert_tiny_en_uncased_random", epochs=1, seq_len=64, query_len=16,
                                 doc_stride=24, progress=False)
    meta = export(qa, tmp_path / "qa", "onnx", representative_data=data)
    v = meta["verification"]
    assert v["windows"] > len(data) and v["batch_size"] == 1  # long contexts: several windows each
    assert v["exact_answer_agreement"] == 1.0 and v["label_agreement"] == 1.0
    err = capsys.readouterr().err
    assert f"exporting onnx none to {tmp_path / 'qa'}" in err and "answer F1 with PyTorch's 100.0" in err
    # int8 may move a span's boundary: the partial-credit F1 is never below exact agreement
    v = export(qa, tmp_path / "qa8", "onnx", "dynamic", representative_data=data, verbose=False,
               tolerance=Tolerance(min_agreement=1e-9, max_metric_drop=100.0))["verification"]
    assert v["exact_answer_agreement"] <= v["label_agreement"] <= 1.0
    exported = ExportedModel.load(tmp_path / "qa")
    assert exported.predict(data) == qa.predict(data)
    a, b = exported.answer("Where did they settle?", ctx), qa.answer("Where did they settle?", ctx)
    assert (a.start, a.end, a.text) == (b.start, b.end, b.text)
    assert exported.evaluate(data)["f1"] == pytest.approx(qa.evaluate(data)["f1"])


def test_cli_export_then_evaluate_and_predict_the_export(awe, tmp_path, capsys):
    clf, data = awe
    clf.save(tmp_path / "model")
    (tmp_path / "test.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in zip(data.texts, data.labels)))
    assert main(["export", str(tmp_path / "model"), "--format", "onnx", "--quantization", "dynamic",
                 "--representative-data", str(tmp_path / "test.tsv"), "--output", str(tmp_path / "exp")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["quantization"] == "dynamic" and out["verification"]["label_agreement"] >= 0.97
    assert main(["classify", "evaluate", str(tmp_path / "exp"), str(tmp_path / "test.tsv"), "--json"]) == 0
    # dynamic int8 flips a near-50/50 toy sentence or two (one is 2 points of 48)
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(clf.evaluate(data)["accuracy"], abs=0.05)
    assert main(["classify", "predict", str(tmp_path / "exp"), "a superb movie", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["predictions"][0]["label"] == "pos"
    assert main(["qa", "evaluate", str(tmp_path / "exp"), str(tmp_path / "test.tsv")]) == 2
    assert "holds an exported text_classifier model" in capsys.readouterr().err
