import random

from textmaker.batching import batch_order, pad_batch


def test_pad_batch_pads_to_longest_row_only():
    b = pad_batch([{"input_ids": [5, 6, 7], "label": 1}, {"input_ids": [8], "token_type_ids": [0], "label": 0}], 0)
    assert b["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["label"].tolist() == [1, 0]


def test_batch_order_covers_every_row_once_and_groups_lengths():
    lengths = [random.Random(i).randint(1, 100) for i in range(1000)]
    batches = batch_order(lengths, 32, random.Random(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10  # random batches would spread ~95
    assert batches != batch_order(lengths, 32, random.Random(1))
    assert batches == batch_order(lengths, 32, random.Random(0))


def test_inference_order_is_sorted_by_length():
    batches = batch_order([5, 1, 3], 2)
    assert batches == [[1, 2], [0]]
