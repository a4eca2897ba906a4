"""MediaPipe Tasks' TextClassifier on an exported .tflite: the app's runtime, with its own tokenizer.

Nothing of textmaker is involved in what it computes; textmaker uses it to check an
export as an app would see it (exporter.py), and the tests and benchmarks use it as
the client it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from textmaker.export.quiet import quiet_native
from textmaker.export.tflite_metadata import require_mediapipe


class MediaPipeTextClassifier:
    name = "MediaPipe Tasks TextClassifier"

    def __init__(self, path: str | Path):
        require_mediapipe()
        from mediapipe.tasks.python import text
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = text.TextClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)))
        with quiet_native():  # "Created TensorFlow Lite XNNPACK delegate for CPU"
            self.classifier = text.TextClassifier.create_from_options(options)

    def classify(self, text: str) -> list[tuple[str, float]]:
        """(label, probability) pairs, best first, as an app gets them."""
        return [(c.category_name, c.score) for c in self.classifier.classify(text).classifications[0].categories]

    def predict_proba(self, texts: Sequence[str], num_labels: int) -> np.ndarray:
        """Probabilities, one row per text, columns in labels.txt order."""
        out = np.zeros((len(texts), num_labels), dtype=np.float32)
        for i, t in enumerate(texts):
            for c in self.classifier.classify(t).classifications[0].categories:
                out[i, c.index] = c.score
        return out

    def close(self) -> None:
        self.classifier.close()
