"""TFLite export: converted by litert-torch, run by the real LiteRT interpreter, checked against PyTorch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from textmaker import QADataset, QuestionAnswerer, TextClassifier, TextDataset
from textmaker.errors import TextmakerError
from textmaker.export import ExportedModel, Tolerance, export
from textmaker.export.tflite_buffers import appended_buffers
from textmaker.export.tflite_metadata import minimum_parser_version, read_metadata_json

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
    meta = export(clf, tmp_path / "t", "tflite", representative_data=data, verbose=False)
    assert {p.name for p in (tmp_path / "t").iterdir()} == {"model.tflite", "vocab.txt", "labels.txt",
                                                            "metadata.json", "tokenizer.json", "tokenizer_config.json"}
    assert [i["name"] for i in meta["inputs"]] == ["ids", "mask", "segment_ids"]
    assert all(i["shape"] == [1, 32] and i["dtype"] == "int32" for i in meta["inputs"])
    assert [o["name"] for o in meta["outputs"]] == ["probability"]
    v = meta["verification"]
    assert v["runtime"] == "MediaPipe Tasks TextClassifier" and v["batch_size"] == 1
    assert v["label_agreement"] == 1.0 and v["textmaker_runner_label_agreement"] == 1.0
    assert v["max_abs_probability_diff"] < 1e-4
    exported = ExportedModel.load(tmp_path / "t")
    texts = ["a superb film", "a dreadful boring film"]
    assert np.allclose(exported.predict_proba(texts), clf.predict_proba(texts), atol=1e-4)
    assert json.loads((tmp_path / "t" / "metadata.json").read_text())["format"] == "tflite"


def test_bert_classifier_metadata_is_what_mediapipe_model_maker_writes(tiny_bert, tmp_path):
    clf, data = tiny_bert
    export(clf, tmp_path / "t", "tflite", representative_data=data, verbose=False)
    md = read_metadata_json(tmp_path / "t" / "model.tflite")
    graph = md["metadata"]["subgraph_metadata"][0]
    assert [t["name"] for t in graph["input_tensor_metadata"]] == ["ids", "mask", "segment_ids"]
    unit = graph["input_process_units"][0]
    assert unit["options_type"] == "BertTokenizerOptions" and unit["options"]["vocab_file"][0]["name"] == "vocab.txt"
    out = graph["output_tensor_metadata"][0]
    assert out["name"] == "probability" and out["associated_files"][0] == {
        "name": "labels.txt", "description": out["associated_files"][0]["description"], "type": "TENSOR_AXIS_LABELS"}
    assert sorted(md["files"]) == ["labels.txt", "vocab.txt"]
    assert md["metadata"]["min_parser_version"] == "1.1.0"  # BertTokenizer and input process units


def test_awe_metadata_carries_the_regex_tokenizer(tmp_path):
    texts = ["a Great film", "an awful film", "GREAT acting", "awful, awful plot"] * 6
    data = TextDataset.from_lists(texts, ["pos", "neg", "pos", "neg"] * 6)
    clf = TextClassifier.create(data, model="average_word_embedding", epochs=2, progress=False)
    export(clf, tmp_path / "awe", "tflite", verbose=False)
    md = read_metadata_json(tmp_path / "awe" / "model.tflite")
    graph = md["metadata"]["subgraph_metadata"][0]
    ids = graph["input_tensor_metadata"][0]
    assert ids["name"] == "ids" and len(graph["input_tensor_metadata"]) == 1
    regex = ids["process_units"][0]
    assert regex["options_type"] == "RegexTokenizerOptions"
    assert regex["options"]["delim_regex_pattern"] == "[^\\w\\']+"
    assert regex["options"]["vocab_file"][0]["name"] == "vocab.txt"
    assert md["metadata"]["min_parser_version"] == "1.2.1"  # the RegexTokenizer's
    vocab = (tmp_path / "awe" / "vocab.txt").read_text().splitlines()
    assert vocab[:3] == ["<PAD> 0", "<START> 1", "<UNKNOWN> 2"] and "Great" in {v.split()[0] for v in vocab}


def test_minimum_parser_version_follows_mediapipe_rules():
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    def version(unit_type=None, groups=False):
        sg = fb.SubGraphMetadataT()
        if unit_type is not None:
            unit = fb.ProcessUnitT()
            unit.optionsType = unit_type
            sg.inputProcessUnits = [unit]
        if groups:
            sg.outputTensorGroups = []
        md = fb.ModelMetadataT()
        md.subgraphMetadata = [sg]
        b = flatbuffers.Builder(0)
        b.Finish(md.Pack(b), b"M001")
        return minimum_parser_version(bytes(b.Output()))

    assert version() == "1.0.0"
    assert version(fb.ProcessUnitOptions.NormalizationOptions) == "1.1.0"
    assert version(fb.ProcessUnitOptions.RegexTokenizerOptions) == "1.2.1"
    assert version(groups=True) == "1.2.0"


@pytest.mark.parametrize("mode", ["float16", "dynamic", "int8"])
def test_quantized_files_are_smaller_and_verified_or_refused(tiny_bert, tmp_path, mode):
    clf, data = tiny_bert
    loose = Tolerance(min_agreement=0.9, max_metric_drop=10.0)
    try:
        meta = export(clf, tmp_path / mode, "tflite", mode, representative_data=data, tolerance=loose, verbose=False)
    except TextmakerError as e:  # refused loudly, with its figures, leaving nothing
        assert "does not match the trained model" in str(e) and not (tmp_path / mode).exists()
        pytest.skip(f"{mode} refused by verification: {e}")
    fp32 = 4 * sum(p.numel() for p in clf.network.parameters())
    # int8 quantizes the fully-connected layers only: the embedding tables stay float.
    assert meta["size_bytes"] < {"float16": 0.55, "dynamic": 0.4, "int8": 1.0}[mode] * fp32
    # Every weight inside the flatbuffer (MediaPipe refuses appended buffers, and its metadata
    # populator silently dropped them): a file this size holds the weights itself.
    model = (tmp_path / mode / "model.tflite").read_bytes()
    assert appended_buffers(model) == 0 and len(model) > {"float16": 0.45, "dynamic": 0.2, "int8": 0.2}[mode] * fp32
    assert meta["quantization"] == mode and meta["verification"]["label_agreement"] >= 0.9


def test_qa_tflite_windows_at_fixed_length(tmp_path):
    ctx = "The Normans were descended from Norse raiders. They settled in Normandy in the 10th century. " * 5
    data = QADataset.from_records([{"id": str(i), "question": "Where did they settle?", "context": ctx,
                                    "answers": ["Normandy"]} for i in range(6)])
    qa = QuestionAnswerer.create(data, model="bert_tiny_en_uncased_random", epochs=1, seq_len=64, query_len=16,
                                 doc_stride=24, progress=False)
    meta = export(qa, tmp_path / "qa", "tflite", representative_data=data, verbose=False)
    assert meta["verification"]["exact_answer_agreement"] == 1.0
    assert sorted(o["name"] for o in meta["outputs"]) == ["end_logits", "start_logits"]
    exported = ExportedModel.load(tmp_path / "qa")
    a, b = exported.answer("Where did they settle?", ctx), qa.answer("Where did they settle?", ctx)
    assert (a.start, a.end) == (b.start, b.end)
    # What TFLite Task Library's BertQuestionAnswerer reads from the metadata.
    md = read_metadata_json(tmp_path / "qa" / "model.tflite")
    graph = md["metadata"]["subgraph_metadata"][0]
    assert [t["name"] for t in graph["input_tensor_metadata"]] == ["ids", "mask", "segment_ids"]
    assert sorted(t["name"] for t in graph["output_tensor_metadata"]) == ["end_logits", "start_logits"]
    assert graph["input_process_units"][0]["options_type"] == "BertTokenizerOptions"
    assert md["files"] == ["vocab.txt"]


def test_missing_extra_names_the_pip_command_and_writes_nothing(tiny_bert, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litert_torch" else real(name, *a))
    clf, data = tiny_bert
    with pytest.raises(TextmakerError, match=r"pip install 'textmaker\[tflite\]'"):
        export(clf, tmp_path / "t", "tflite", verbose=False)
    assert not (tmp_path / "t").exists() and list(tmp_path.iterdir()) == []


def test_conversion_does_not_flood_the_terminal(tiny_bert, tmp_path, capfd):
    clf, data = tiny_bert
    export(clf, tmp_path / "t", "tflite", "dynamic", representative_data=data)
    out, err = capfd.readouterr()
    assert "[START]" not in out + err
    assert "exported" in err and "agreement with PyTorch" in err


def test_importing_the_converter_is_quiet():
    # In a fresh interpreter: this test session imported litert_torch already (importorskip).
    code = "from textmaker.export.tflite_format import _import_litert_torch; _import_litert_torch()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout + done.stderr == ""
