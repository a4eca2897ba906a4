"""Optimum's ORTModelForSequenceClassification loads textmaker's ONNX export directories as they are.

Optimum pins a transformers older than the one in textmaker's test environment, so it runs from a
venv of its own (.venv-optimum, made by `make setup`), as a server application would.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_int8_labels_agree
from textmaker.export import ExportedModel, export

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv-optimum" / "bin" / "python"
pytestmark = pytest.mark.skipif(not PYTHON.is_file(), reason="no .venv-optimum (make setup makes it)")


@pytest.mark.encoder
@pytest.mark.parametrize("mode,file_name", [("none", "model.onnx"), ("dynamic", "model_quantized.onnx")])
def test_optimum_runs_the_onnx_export(minilm_clf, sample_test, tmp_path, mode, file_name):
    export(minilm_clf, tmp_path / "sst2", "onnx", mode, verbose=False)
    texts = sample_test.texts[:200]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    done = subprocess.run([str(PYTHON), str(REPO / "tests" / "clients" / "optimum_run.py"), str(tmp_path / "sst2"),
                           file_name, str(tmp_path / "texts.json")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["labels"] == minilm_clf.label_names
    theirs = np.array(out["probabilities"])
    ours = ExportedModel.load(tmp_path / "sst2").predict_proba(texts, batch_size=1)
    assert (theirs.argmax(-1) == ours.argmax(-1)).mean() == 1.0 and np.abs(theirs - ours).max() <= 1e-4
    torch_top = minilm_clf.predict_proba(texts).argmax(-1)
    if mode == "none":
        assert (theirs.argmax(-1) == torch_top).all()
    else:
        assert_int8_labels_agree(theirs.argmax(-1), torch_top)
