"""Training options checked before any data is read, each error naming the option and its flag.

A zero is never taken for "use the default": None is. So `--epochs 0` is an error, not 3 epochs.
"""

from __future__ import annotations

import math

from textmaker.errors import TextmakerError

# option -> its command-line flag, for messages that fit the Python API and the CLI alike
FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "learning_rate": "--learning-rate",
         "seq_len": "--seq-len", "dropout": "--dropout", "query_len": "--query-len", "doc_stride": "--doc-stride",
         "early_stopping_patience": "--early-stopping", "validation_split": "--validation-split",
         "vocab_size": "--vocab-size", "wordvec_dim": "--wordvec-dim",
         "gradient_accumulation_steps": "--gradient-accumulation", "max_steps": "--max-steps",
         "eval_every_steps": "--eval-every", "frozen_layers": "--frozen-layers", "seed": "--seed"}
MAX_SEQ_LEN_WORDS = 100_000  # the average-word-embedding model has no position table; this is a sanity cap


def _name(option: str) -> str:
    return f"{option} ({FLAGS[option]})" if option in FLAGS else option


def positive_int(option: str, value, low: int = 1, high: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise TextmakerError(f"{_name(option)} must be a whole number {span}, got {value!r}")


def positive_float(option: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise TextmakerError(f"{_name(option)} must be a finite number above 0, got {value!r}")


def fraction(option: str, value, include_zero: bool = False) -> None:
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
        (0 <= value if include_zero else 0 < value) and value < 1
    if not ok:
        raise TextmakerError(f"{_name(option)} must be {'at least 0' if include_zero else 'above 0'} and below 1, "
                             f"got {value!r}")


def check_training(epochs=None, batch_size=None, learning_rate=None, dropout=None, early_stopping_patience=None,
                   validation_split=None, seed=None) -> None:
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    positive_float("learning_rate", learning_rate)
    fraction("dropout", dropout, include_zero=True)
    positive_int("early_stopping_patience", early_stopping_patience)
    fraction("validation_split", validation_split)
    positive_int("seed", seed, 0)  # as --seeds takes them: one rule for every seed


def check_seq_len(seq_len, kind: str, max_positions: int | None = None) -> None:
    """kind: "bert" (8 .. the encoder's positions) or "awe" (2: <START> and one word, upward)."""
    if kind == "awe":
        positive_int("seq_len", seq_len, 2, MAX_SEQ_LEN_WORDS)
    else:
        positive_int("seq_len", seq_len, 8, max_positions)
