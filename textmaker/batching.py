"""Batches padded to their own longest row (long ones a little further), and length-grouped batch orders.

Padding every row to seq_len wastes most of a CPU's time on [PAD]; grouping rows
of similar length into a batch wastes even less. Used by training and inference.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np

Row = dict  # "input_ids" (list[int]), optional "token_type_ids", other scalar fields

# Batches longer than this are padded up to a multiple of BUCKET_STEP. oneDNN keeps a compiled
# kernel (and its memory) for every matrix shape it meets, up to 1,024 of them: windows of every
# length from 100 to 384 made SQuAD training grow to 8 GB. Short batches (SST-2's sentences) keep
# their own length: their few shapes fit the cache, and rounding 14 tokens up to 16 costs 14%.
BUCKET_FROM, BUCKET_STEP = 64, 16


def padded_length(longest: int, limit: int) -> int:
    """The width a batch whose longest row is `longest` is padded to; never beyond `limit`, the
    longest row of the data (so never beyond the encoder's positions)."""
    if longest <= BUCKET_FROM:
        return longest
    return min(-(-longest // BUCKET_STEP) * BUCKET_STEP, limit)


def pad_batch(rows: Sequence[Row], pad_id: int, width: int | None = None) -> dict[str, np.ndarray]:
    """Pad to the longest row (or to a fixed `width`, for runtimes with fixed shapes).

    NumPy int64 arrays: the exported runtimes take them as they are, and training
    wraps them with torch.from_numpy (no copy).
    """
    width = width or max(len(r["input_ids"]) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = r["input_ids"]
        if "token_type_ids" in r:
            types[i, :n] = r["token_type_ids"]
        mask[i, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    for key in rows[0]:
        if key not in batch:
            batch[key] = np.array([r[key] for r in rows], dtype=np.int64)
    return batch


def batch_order(lengths: Sequence[int], batch_size: int, rng: random.Random | None = None,
                group_by_length: bool = True, window: int = 50) -> list[list[int]]:
    """Row indices split into batches.

    With `rng`, rows are shuffled, sorted by length within windows of `window`
    batches, and the batches shuffled: random, but with little padding. Without
    `rng` (inference), rows are sorted by length over the whole set.
    """
    idx = list(range(len(lengths)))
    if rng is None:
        if group_by_length:
            idx.sort(key=lambda i: lengths[i])
        return [idx[s:s + batch_size] for s in range(0, len(idx), batch_size)]
    rng.shuffle(idx)
    if group_by_length:
        span = batch_size * window
        idx = [i for s in range(0, len(idx), span) for i in sorted(idx[s:s + span], key=lambda i: lengths[i])]
    batches = [idx[s:s + batch_size] for s in range(0, len(idx), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def run_batches(rows: Sequence[Row], pad_id: int, batch_size: int, forward: Callable[[dict], list],
                width: int | None = None) -> list:
    """forward(padded batch) -> one output per row; returned in the order of `rows`.

    Rows are batched by length, so each batch carries little padding.
    """
    out: list = [None] * len(rows)
    lengths = [len(r["input_ids"]) for r in rows]
    longest = max(lengths, default=0)
    for b in batch_order(lengths, batch_size):
        size = width or padded_length(max(lengths[i] for i in b), longest)
        for i, y in zip(b, forward(pad_batch([rows[i] for i in b], pad_id, size))):
            out[i] = y
    return out
