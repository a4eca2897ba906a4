"""textmaker: small, fast, accurate text models from your own labelled data."""

__version__ = "0.1.0"

from textmaker.data import QADataset, TextDataset  # noqa: E402
from textmaker.errors import TextmakerError  # noqa: E402
from textmaker.presets import PRESETS  # noqa: E402
from textmaker.tasks.classifier import Prediction, TextClassifier  # noqa: E402
from textmaker.tasks.question_answer import QuestionAnswerer  # noqa: E402
from textmaker.training import TrainingConfig  # noqa: E402

__all__ = ["PRESETS", "Prediction", "QADataset", "QuestionAnswerer", "TextClassifier", "TextDataset",
           "TextmakerError", "TrainingConfig", "__version__"]
