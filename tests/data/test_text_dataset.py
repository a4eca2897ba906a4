import json

import pandas as pd
import pytest

from tests.conftest import IMDB, SST2_DEV, write_tsv
from textmaker.data import TextDataset
from textmaker.errors import TextmakerError


def test_tsv_real_sst2_dev():
    d = TextDataset.from_csv(SST2_DEV, text_column="sentence")
    assert len(d) == 872
    assert d.label_names == ["0", "1"]
    assert d.class_counts() == {"0": 428, "1": 444}
    assert "line 2" in d.origins[0]


def test_csv_quotes_and_custom_columns(tmp_path):
    p = tmp_path / "reviews.csv"
    p.write_text('id,review,stars\n1,"Great, really great",good\n2,"said ""meh""",bad\n', encoding="utf-8")
    d = TextDataset.from_csv(p, text_column="review", label_column="stars")
    assert d.texts == ["Great, really great", 'said "meh"']
    assert d.label_names == ["bad", "good"] and d.label_ids == [1, 0]


def test_semicolon_delimiter_and_latin1(tmp_path):
    p = tmp_path / "data.txt"
    p.write_bytes("text;label\ncaf\xe9 au lait;yes\nnon;no\n".encode("latin-1"))
    d = TextDataset.from_csv(p, delimiter=";", encoding="latin-1")
    assert d.texts[0] == "café au lait"


def test_numeric_labels_sort_as_numbers(tmp_path):
    rows = [(f"text {i}", str(label)) for i, label in enumerate([10, 2, 1, 2, 10])]
    d = TextDataset.from_csv(write_tsv(tmp_path / "n.tsv", rows), text_column="sentence")
    assert d.label_names == ["1", "2", "10"]


def test_user_label_order_is_kept(tmp_path):
    d = TextDataset.from_lists(["a", "b"], ["pos", "neg"], label_names=["pos", "neg"])
    assert d.label_ids == [0, 1]


def test_jsonl(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"text": t, "label": l}) for t, l in [("hi", "a"), ("yo", "b")]) + "\n")
    d = TextDataset.from_path(p)
    assert d.texts == ["hi", "yo"] and d.labels == ["a", "b"]


def test_folder_per_class_with_class_choice(tmp_path):
    for c in ("neg", "pos", "unsup"):
        (tmp_path / c).mkdir()
        for i in range(3):
            (tmp_path / c / f"{i}_1.txt").write_text(f"{c} review {i}", encoding="utf-8")
    d = TextDataset.from_folder(tmp_path, classes=["neg", "pos"])
    assert len(d) == 6 and d.label_names == ["neg", "pos"]
    assert TextDataset.from_path(tmp_path).label_names == ["neg", "pos", "unsup"]


def test_pandas_and_lists():
    df = pd.DataFrame({"text": ["good", "bad", "fine"], "label": ["p", "n", "p"]})
    d = TextDataset.from_pandas(df)
    assert d.class_counts() == {"n": 1, "p": 2}
    assert TextDataset.from_lists(["x", "y"], [1, 0]).label_names == ["0", "1"]


def test_split_is_stratified_and_reproducible(sample_train):
    a, b = sample_train.split(0.8, seed=3)
    a2, _ = sample_train.split(0.8, seed=3)
    assert a.texts == a2.texts
    assert len(a) + len(b) == len(sample_train)
    assert not set(a.origins) & set(b.origins)
    for name, n in sample_train.class_counts().items():
        assert abs(a.class_counts()[name] - 0.8 * n) <= 1
    assert a.split(0.5, seed=4)[0].texts != a.split(0.5, seed=5)[0].texts


def test_summary_lists_every_class(sample_train):
    s = sample_train.summary()
    assert "1200 texts, 2 classes" in s and "negative" in s and "positive" in s


# ---- errors: one line naming the place and what to do ----

def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(TextmakerError) as e:
        TextDataset.from_csv(tmp_path / "nope.csv")
    assert "nope.csv: no such file" in _one_line(e)


def test_missing_column_lists_the_columns(tmp_path):
    p = write_tsv(tmp_path / "t.tsv", [("x", "1")])
    with pytest.raises(TextmakerError) as e:
        TextDataset.from_csv(p)  # default column "text" is not there
    msg = _one_line(e)
    assert "'text'" in msg and "['sentence', 'label']" in msg


def test_non_utf8_names_the_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(b"text,label\nfine,a\nalso fine,b\ncaf\xe9,a\n")
    with pytest.raises(TextmakerError) as e:
        TextDataset.from_csv(p)
    msg = _one_line(e)
    assert "bad.csv line 4" in msg and "0xe9" in msg and "encoding" in msg


def test_empty_text_names_the_line(tmp_path):
    p = write_tsv(tmp_path / "e.tsv", [("ok", "a"), ("  ", "b")])
    with pytest.raises(TextmakerError) as e:
        TextDataset.from_csv(p, text_column="sentence")
    assert "e.tsv line 3: empty text" in _one_line(e)


def test_empty_label_and_empty_file(tmp_path):
    p = write_tsv(tmp_path / "l.tsv", [("ok", "a"), ("text", "")])
    with pytest.raises(TextmakerError, match="line 3: empty label"):
        TextDataset.from_csv(p, text_column="sentence")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TextmakerError, match="empty"):
        TextDataset.from_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("text,label\n")
    with pytest.raises(TextmakerError, match="no data rows"):
        TextDataset.from_csv(tmp_path / "header.csv")


def test_bad_jsonl_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n{"text": "b", label}\n')
    with pytest.raises(TextmakerError, match=r"d.jsonl line 2: not valid JSON"):
        TextDataset.from_jsonl(p)


def test_unseen_label_is_named(tmp_path):
    d = TextDataset.from_csv(write_tsv(tmp_path / "t.tsv", [("a", "pos"), ("b", "neutral")]), text_column="sentence")
    with pytest.raises(TextmakerError) as e:
        d.with_label_names(["neg", "pos"])
    msg = _one_line(e)
    assert "t.tsv line 3" in msg and "'neutral'" in msg and "never seen in training" in msg


def test_real_imdb_reviews_in_class_folders(tmp_path):
    """A slice of the real IMDB train archive, laid out as it ships (aclImdb/train/{neg,pos}/*.txt)."""
    import tarfile

    with tarfile.open(IMDB) as tar:
        members, counts = [], {"neg": 0, "pos": 0}
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 4 and parts[2] in counts and counts[parts[2]] < 15:
                counts[parts[2]] += 1
                members.append(m)
            if all(n == 15 for n in counts.values()):
                break
        tar.extractall(tmp_path, members=members, filter="data")
    d = TextDataset.from_folder(tmp_path / "aclImdb" / "train")
    assert d.label_names == ["neg", "pos"] and d.class_counts() == {"neg": 15, "pos": 15}
    assert all(len(t) > 20 for t in d.texts) and d.origins[0].endswith(".txt")
