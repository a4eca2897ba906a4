from textmaker.data.squad import Answer, QADataset, QAExample
from textmaker.data.text_dataset import TextDataset

__all__ = ["Answer", "QADataset", "QAExample", "TextDataset"]
