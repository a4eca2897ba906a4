from textmaker.data.text_dataset import TextDataset

__all__ = ["TextDataset"]
