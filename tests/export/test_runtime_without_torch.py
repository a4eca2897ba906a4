"""An exported model runs where torch is not installed: tokenization, runner, labels."""

import importlib.util
import subprocess
import sys

import pytest

from textmaker import TextClassifier, TextDataset
from textmaker.export import export

pytest.importorskip("onnxruntime")

# Any `import torch` (or a torch submodule) fails in the child, as on a machine without it.
NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed")
sys.meta_path.insert(0, NoTorch())
"""


def test_onnx_and_tflite_exports_predict_without_torch(tmp_path):
    texts = ["a Great film", "an awful film", "GREAT acting", "awful, awful plot"] * 6
    data = TextDataset.from_lists(texts, ["pos", "neg", "pos", "neg"] * 6)
    clf = TextClassifier.create(data, model="average_word_embedding", epochs=30, progress=False)
    export(clf, tmp_path / "onnx", "onnx", verbose=False)
    formats = ["onnx"]
    if importlib.util.find_spec("litert_torch") is not None:  # the [tflite] extra
        export(clf, tmp_path / "tflite", "tflite", verbose=False)
        formats.append("tflite")
    expected = [p[0].label for p in clf.predict(["great acting", "an awful plot"])]
    for fmt in formats:
        code = NO_TORCH + f"""
from textmaker.export import ExportedModel
model = ExportedModel.load({str(tmp_path / fmt)!r})
print([p[0].label for p in model.predict(["great acting", "an awful plot"])])
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
"""
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == repr(expected)
        assert "XNNPACK" not in done.stderr  # LiteRT's notice on its first run is not the user's to read
