from textmaker.text.wordpiece import Encoding, WordPieceTokenizer
from textmaker.text.words import WordTokenizer

__all__ = ["Encoding", "WordPieceTokenizer", "WordTokenizer"]
