import random

from textmaker.batching import batch_order, pad_batch, padded_length, run_batches


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


def test_long_batches_pad_to_a_few_widths_never_beyond_the_longest_row():
    assert [padded_length(n, 384) for n in (1, 14, 64)] == [1, 14, 64]  # short batches: their own length
    assert [padded_length(n, 384) for n in (65, 80, 81, 383, 384)] == [80, 80, 96, 384, 384]
    assert padded_length(97, 100) == 100  # not beyond the data's longest row (an encoder with 100 positions)
    assert len({padded_length(n, 384) for n in range(65, 385)}) == 20  # oneDNN compiles one kernel set per width


def test_inference_outputs_come_back_in_row_order_whatever_the_padding():
    rows = [{"input_ids": list(range(1, n + 1))} for n in (70, 3, 100, 65)]
    widths = []

    def forward(batch):
        widths.append(batch["input_ids"].shape[1])
        return [int(m.sum()) for m in batch["attention_mask"]]  # each row's own length, padding aside

    assert run_batches(rows, 0, 2, forward) == [70, 3, 100, 65]
    assert widths == [80, 100]  # (3, 65) padded to 80; (70, 100) to 100, the longest row, not 112
