"""transformers.js (under Node) loads textmaker's ONNX export directories as they are.

The client is the test: tests/clients/js/run_export.mjs is what a JS app writes, pointed at the
export directory; nothing of textmaker runs in it.
"""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_int8_labels_agree
from textmaker.export import ExportedModel, export

CLIENT = Path(__file__).resolve().parents[1] / "clients" / "js"
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (CLIENT / "node_modules" / "@huggingface" / "transformers").is_dir(),
    reason="transformers.js not installed: npm ci --ignore-scripts --prefix tests/clients/js (make setup does)")


def run_js(directory: Path, task: str, dtype: str, inputs: list, tmp_path: Path) -> list:
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    done = subprocess.run(["node", str(CLIENT / "run_export.mjs"), str(directory), task, dtype,
                           str(tmp_path / "inputs.json")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.encoder
@pytest.mark.parametrize("mode,dtype", [("none", "fp32"), ("dynamic", "q8")])
def test_transformers_js_classifies_like_textmaker(minilm_clf, sample_test, tmp_path, mode, dtype):
    export(minilm_clf, tmp_path / "sst2", "onnx", mode, verbose=False)
    texts = sample_test.texts[:200]
    rows = run_js(tmp_path / "sst2", "text-classification", dtype, texts, tmp_path)
    theirs = np.array([[next(d["score"] for d in row if d["label"] == name) for name in minilm_clf.label_names]
                       for row in rows])
    ours = ExportedModel.load(tmp_path / "sst2").predict_proba(texts, batch_size=1)
    assert (theirs.argmax(-1) == ours.argmax(-1)).mean() == 1.0
    assert np.abs(theirs - ours).max() <= 1e-4
    torch_top = minilm_clf.predict_proba(texts).argmax(-1)
    if mode == "none":
        assert (theirs.argmax(-1) == torch_top).all()
    else:
        assert_int8_labels_agree(theirs.argmax(-1), torch_top)
