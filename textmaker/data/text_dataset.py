"""Labelled text for classification, from any of the sources people keep it in.

A TextDataset holds raw texts, their labels as strings, and the ordered label
names. Each row remembers where it came from ("train.tsv line 12") so that a
problem found later (an unseen label at evaluation time) can point at it.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from textmaker.data.readers import read_text, require_file
from textmaker.errors import TextmakerError


csv.field_size_limit(2**31 - 1)  # a long review in one field is data, not an error (default limit: 128 KiB)

MANY_CLASSES = 100  # past this, say so: an id or a free-text column chosen as the label is a common slip


def normalize_label(value, origin: str) -> str:
    """One spelling per class: "1", "1.0" and " 1 " are one class, "True" and "true" another.
    A label must be one line of text: labels.txt and the exported model's metadata hold one per line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return ""  # NaN: a missing label
    label = str(value).strip()
    if isinstance(value, (int, float)) or _is_number(label):
        number = float(label)
        if number.is_integer() and abs(number) < 2**53:
            return str(int(number))
        return repr(number)
    if label.lower() in ("true", "false"):
        return label.lower()
    if any(c in label for c in "\n\r\x00"):
        raise TextmakerError(f"{origin}: label {label!r} spans lines or holds a NUL; a label is one line of text")
    return label


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return s.lower() not in ("nan", "inf", "-inf", "infinity", "-infinity", "+inf")


def check_text(text, origin: str) -> str:
    """A text is a non-empty string of text: not a number, not NaN, not binary content."""
    if isinstance(text, bytes):
        raise TextmakerError(f"{origin}: the text is bytes, not a string; decode it first")
    if not isinstance(text, str):
        what = "missing (NaN)" if isinstance(text, float) and text != text else f"a {type(text).__name__}"
        raise TextmakerError(f"{origin}: the text is {what}, not a string; fill it in or remove the row")
    if "\x00" in text:
        raise TextmakerError(f"{origin}: the text holds NUL bytes (binary content?); textmaker reads text files")
    if not text.strip():
        raise TextmakerError(f"{origin}: empty text; remove the row or fill it in")
    return text


def _sorted_labels(labels: set[str]) -> list[str]:
    # "2" before "10": numeric labels sort as numbers.
    if all(_is_int(x) for x in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def _is_int(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False


@dataclass
class TextDataset:
    texts: list[str]
    labels: list[str]
    label_names: list[str]
    origins: list[str] = field(default_factory=list)
    source: str = "<memory>"

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise TextmakerError(f"{self.source}: {len(self.texts)} texts but {len(self.labels)} labels")
        if not self.origins:
            self.origins = [f"{self.source} row {i + 1}" for i in range(len(self.texts))]
        if not self.texts:
            raise TextmakerError(f"{self.source}: the data set is empty; give at least one labelled text")
        for text, origin in zip(self.texts, self.origins):
            check_text(text, origin)
        known = set(self.label_names)
        if len(known) != len(self.label_names):
            raise TextmakerError(f"{self.source}: label names repeat: {self.label_names}")
        for label, origin in zip(self.labels, self.origins):
            if label not in known:
                raise TextmakerError(
                    f"{origin}: label {label!r} is not among the label names {self.label_names}"
                )

    # ---- constructors -------------------------------------------------

    @classmethod
    def from_lists(cls, texts: Sequence[str], labels: Sequence, label_names: Sequence[str] | None = None,
                   source: str = "<lists>", origins: list[str] | None = None) -> "TextDataset":
        texts, labels = list(texts), list(labels)
        if len(texts) != len(labels):
            raise TextmakerError(f"{source}: {len(texts)} texts but {len(labels)} labels; give one label per text")
        origins = origins or [f"{source} row {i + 1}" for i in range(len(labels))]
        labels = ["" if x is None else normalize_label(x, o) for x, o in zip(labels, origins)]
        for label, origin in zip(labels, origins):
            if label == "":
                raise TextmakerError(f"{origin}: empty label; every text needs a label")
        kinds = {"true/false" if x in ("true", "false") else "numbers" if _is_number(x) else "words" for x in labels}
        if {"true/false", "numbers"} <= kinds and "words" not in kinds:
            first = next(o for x, o in zip(labels, origins) if x in ("true", "false"))
            raise TextmakerError(f"{first}: the labels mix true/false with numbers; use one or the other")
        names = ([normalize_label(x, source) for x in label_names] if label_names is not None
                 else _sorted_labels(set(labels)))
        return cls(texts, labels, names, origins, source)

    @classmethod
    def from_csv(cls, path: str | Path, text_column: str = "text", label_column: str = "label",
                 delimiter: str | None = None, quotechar: str | None = '"', encoding: str = "utf-8",
                 label_names: Sequence[str] | None = None) -> "TextDataset":
        """CSV or TSV with a header row. A .tsv file is read without quoting, as GLUE's are."""
        path = require_file(path)
        if delimiter is None:
            delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
        if delimiter == "\t" and quotechar == '"' and path.suffix.lower() in (".tsv", ".tab"):
            quotechar = None
        text = read_text(path, encoding)
        quoting = csv.QUOTE_NONE if quotechar is None else csv.QUOTE_MINIMAL
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar, quoting=quoting)
        try:
            header = next(reader)
        except StopIteration:
            raise TextmakerError(f"{path}: the file is empty; it needs a header row and data rows") from None
        header = [h.strip() for h in header]
        cols = {}
        for name, role in ((text_column, "text"), (label_column, "label")):
            if name not in header:
                raise TextmakerError(
                    f"{path}: no {role} column {name!r}; the columns are {header} "
                    f"(choose with --{role}-column, or --delimiter if the file is not split right)"
                )
            cols[role] = header.index(name)
        texts, labels, origins = [], [], []
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise TextmakerError(
                        f"{path} line {line}: {len(row)} fields, expected {len(header)} as in the header; "
                        f"quote fields that hold the delimiter, or check --delimiter"
                    )
                texts.append(row[cols["text"]])
                labels.append(row[cols["label"]])
                origins.append(f"{path} line {line}")
        except csv.Error as e:
            raise TextmakerError(f"{path} line {reader.line_num}: {e}") from None
        if not texts:
            raise TextmakerError(f"{path}: no data rows under the header")
        return cls.from_lists(texts, labels, label_names, str(path), origins)

    @classmethod
    def from_jsonl(cls, path: str | Path, text_field: str = "text", label_field: str = "label",
                   encoding: str = "utf-8", label_names: Sequence[str] | None = None) -> "TextDataset":
        path = require_file(path)
        texts, labels, origins = [], [], []
        for n, line in enumerate(read_text(path, encoding).splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise TextmakerError(f"{path} line {n}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise TextmakerError(f"{path} line {n}: expected a JSON object per line")
            for name, role in ((text_field, "text"), (label_field, "label")):
                if name not in obj:
                    raise TextmakerError(
                        f"{path} line {n}: no {role} field {name!r}; the fields are {sorted(obj)} "
                        f"(choose with --{role}-column)"
                    )
            texts.append(obj[text_field])
            labels.append(obj[label_field])
            origins.append(f"{path} line {n}")
        if not texts:
            raise TextmakerError(f"{path}: the file is empty; it needs one JSON object per line")
        return cls.from_lists(texts, labels, label_names, str(path), origins)

    @classmethod
    def from_folder(cls, path: str | Path, classes: Sequence[str] | None = None, encoding: str = "utf-8",
                    label_names: Sequence[str] | None = None) -> "TextDataset":
        """One sub-folder per class, one text per file (the IMDB layout).

        `classes` picks sub-folders (IMDB's train/ also holds an unlabelled `unsup/`).
        """
        path = require_file(path, "folder")
        if not path.is_dir():
            raise TextmakerError(f"{path}: expected a folder with one sub-folder per class")
        found = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if classes is None:
            classes = found
        for c in classes:
            if c not in found:
                raise TextmakerError(f"{path}: no sub-folder {c!r}; the sub-folders are {found}")
        texts, labels, origins = [], [], []
        for c in classes:
            files = [f for f in sorted((path / c).iterdir()) if f.is_file() and not f.name.startswith(".")]
            if not files:
                raise TextmakerError(f"{path / c}: the class folder is empty; add text files or remove it")
            for f in files:
                texts.append(read_text(f, encoding))
                labels.append(c)
                origins.append(str(f))
        if not texts:
            raise TextmakerError(f"{path}: no text files in the class sub-folders {list(classes)}")
        return cls.from_lists(texts, labels, label_names or list(classes), str(path), origins)

    @classmethod
    def from_pandas(cls, df, text_column: str = "text", label_column: str = "label",
                    label_names: Sequence[str] | None = None) -> "TextDataset":
        for name, role in ((text_column, "text"), (label_column, "label")):
            if name not in df.columns:
                raise TextmakerError(f"DataFrame: no {role} column {name!r}; the columns are {list(df.columns)}")
        origins = [f"DataFrame index {i} (column {text_column!r})" for i in df.index]
        return cls.from_lists(list(df[text_column]), list(df[label_column]), label_names, "DataFrame", origins)

    @classmethod
    def from_path(cls, path: str | Path, text_column: str = "text", label_column: str = "label",
                  delimiter: str | None = None, encoding: str = "utf-8",
                  label_names: Sequence[str] | None = None) -> "TextDataset":
        """Pick the reader from what `path` is: a folder, .jsonl/.json, else CSV/TSV."""
        path = Path(path)
        if path.is_dir():
            return cls.from_folder(path, encoding=encoding, label_names=label_names)
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json") and delimiter is None:
            return cls.from_jsonl(path, text_column, label_column, encoding, label_names)
        return cls.from_csv(path, text_column, label_column, delimiter, encoding=encoding, label_names=label_names)

    # ---- views --------------------------------------------------------

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_ids(self) -> list[int]:
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[label] for label in self.labels]

    def with_label_names(self, label_names: Sequence[str]) -> "TextDataset":
        """The same rows indexed by a model's label names; a label the model never saw is an error."""
        known = set(label_names)
        for label, origin in zip(self.labels, self.origins):
            if label not in known:
                raise TextmakerError(
                    f"{origin}: label {label!r} was never seen in training; the model knows {list(label_names)}"
                )
        return TextDataset(self.texts, self.labels, list(label_names), self.origins, self.source)

    def to_records(self) -> list[dict]:
        """{"text", "label"} per row: what a model directory keeps of its validation data."""
        return [{"text": t, "label": label} for t, label in zip(self.texts, self.labels)]

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {name: counts.get(name, 0) for name in self.label_names}

    def summary(self, max_lines: int = 20) -> str:
        """Class counts; past max_lines classes, the largest and a line for the rest."""
        counts = self.class_counts()
        shown = sorted(counts, key=lambda n: -counts[n])[:max_lines] if len(counts) > max_lines else list(counts)
        width = min(max(len(n) for n in shown), 40)
        lines = [f"{self.source}: {len(self)} texts, {len(counts)} classes"]
        lines += [f"  {name[:40]:<{width}}  {counts[name]:>7}  {100 * counts[name] / len(self):5.1f}%" for name in shown]
        if len(shown) < len(counts):
            rest = len(self) - sum(counts[n] for n in shown)
            lines.append(f"  ... {len(counts) - len(shown)} more classes with {rest} texts")
        if len(counts) > MANY_CLASSES:
            lines.append(f"  warning: {len(counts)} classes; is the label column right? (--label-column)")
        return "\n".join(lines)

    def _subset(self, idx: list[int], source: str) -> "TextDataset":
        return TextDataset([self.texts[i] for i in idx], [self.labels[i] for i in idx], list(self.label_names),
                           [self.origins[i] for i in idx], source)

    def split(self, fraction: float, seed: int = 0) -> tuple["TextDataset", "TextDataset"]:
        """Split into (fraction, 1 - fraction), stratified by label, reproducibly."""
        if not 0 < fraction < 1:
            raise TextmakerError(f"split fraction must be between 0 and 1, got {fraction}")
        rng = random.Random(seed)
        first, second = [], []
        by_label: dict[str, list[int]] = {}
        for i, label in enumerate(self.labels):
            by_label.setdefault(label, []).append(i)
        for label in self.label_names:
            idx = by_label.get(label, [])
            rng.shuffle(idx)
            k = round(fraction * len(idx))
            if len(idx) >= 2:  # keep every class on both sides when it can be
                k = min(max(k, 1), len(idx) - 1)
            first += idx[:k]
            second += idx[k:]
        if not first or not second:
            raise TextmakerError(f"{self.source}: {len(self)} rows are too few to split at {fraction}")
        first.sort()
        second.sort()
        return self._subset(first, f"{self.source}[split {fraction}]"), \
            self._subset(second, f"{self.source}[split {1 - fraction:.2g}]")

    def sample(self, n: int, seed: int = 0) -> "TextDataset":
        """A reproducible random subset of n rows (all rows if n >= len)."""
        if n >= len(self):
            return self
        idx = sorted(random.Random(seed).sample(range(len(self)), n))
        return self._subset(idx, f"{self.source}[{n} sampled]")
