"""textmaker: small, fast, accurate text models from your own labelled data."""

__version__ = "0.1.0"

from textmaker.data import QADataset, TextDataset  # noqa: E402
from textmaker.errors import TextmakerError  # noqa: E402
from textmaker.presets import PRESETS  # noqa: E402
from textmaker.tasks.classifier import Prediction, TextClassifier  # noqa: E402
from textmaker.tasks.question_answer import QuestionAnswerer  # noqa: E402


def __getattr__(name: str):
    # TrainingConfig lives beside the torch training loop; importing it lazily keeps
    # `import textmaker` (and running an exported model) free of torch.
    if name == "TrainingConfig":
        from textmaker.training import TrainingConfig

        return TrainingConfig
    raise AttributeError(f"module 'textmaker' has no attribute {name!r}")


__all__ = ["PRESETS", "Prediction", "QADataset", "QuestionAnswerer", "TextClassifier", "TextDataset",
           "TextmakerError", "TrainingConfig", "__version__"]
