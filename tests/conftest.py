"""Shared fixtures: real data slices, the real encoder, and small files on disk."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from textmaker.data import TextDataset

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "textmaker" / "sample_data"
# Real-data slices committed with the tests (source and licence in fixtures/README.md): the
# suite needs nothing beside the repository.
FIXTURES = REPO / "tests" / "fixtures"
SST2_DEV = FIXTURES / "sst2_dev.tsv"
SQUAD = FIXTURES / "squad_v1.1_dev_4articles.json"
IMDB = FIXTURES / "imdb_train_400.tar.gz"


def assert_int8_labels_agree(got, ref, min_agreement: float = 0.97) -> None:
    """An int8 export's labels (run by a client) against PyTorch's, judged as the export's own gate
    judges them: no more changes than a 1 - min_agreement rate explains (binomial test, p >= 0.05).
    Which few near-50/50 texts int8 flips depends on the trained weights, and those differ between
    CPUs (bf16 training where the CPU has it), so a fixed share of 200 texts would fail sound files."""
    import numpy as np

    from textmaker.export import Tolerance

    gate, changed, n = Tolerance(min_agreement=min_agreement), int((np.asarray(got) != np.asarray(ref)).sum()), len(ref)
    assert not gate.refuses_changes(n, changed), \
        f"{changed} of {n} labels changed: more than a {1 - min_agreement:.0%} rate explains " \
        f"(p = {gate.agreement_p_value(n, changed):.2g})"


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from textmaker.presets import resolve

    return Path(resolve("minilm_l6_en_uncased")["path"])


@pytest.fixture(scope="session")
def sample_train() -> TextDataset:
    return TextDataset.from_csv(SAMPLE / "sst2_sample_train.tsv", text_column="sentence")


@pytest.fixture(scope="session")
def sample_test() -> TextDataset:
    return TextDataset.from_csv(SAMPLE / "sst2_sample_test.tsv", text_column="sentence")


def write_tsv(path: Path, rows: list[tuple[str, str]], header=("sentence", "label")) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def toy_rows() -> list[tuple[str, str]]:
    """A separable two-class task: any model that learns at all gets it right."""
    good = ["wonderful", "great", "superb", "brilliant", "delightful", "lovely", "excellent", "fantastic"]
    bad = ["awful", "terrible", "dreadful", "horrible", "boring", "dull", "poor", "lousy"]
    rows = []
    for i in range(48):
        rows.append((f"a {good[i % 8]} {good[(i + 3) % 8]} movie number {i}", "pos"))
        rows.append((f"a {bad[i % 8]} {bad[(i + 5) % 8]} movie number {i}", "neg"))
    return rows


@pytest.fixture(scope="session")
def minilm_clf(sample_train):
    """MiniLM fine-tuned on 480 real SST-2 sentences (84.7% on the sample test set when written)."""
    from textmaker import TextClassifier

    train, val = sample_train.sample(600, seed=1).split(0.8, seed=0)
    return TextClassifier.create(train, val, epochs=4, seq_len=64, progress=False)


@pytest.fixture(scope="module")
def toy_rows_module():
    """A smaller separable task, one per test module (for module-scoped trained models)."""
    good = ["wonderful", "great", "superb", "brilliant"]
    bad = ["awful", "terrible", "dreadful", "boring"]
    return [(f"a {good[i % 4]} movie {i}", "pos") for i in range(24)] + \
           [(f"a {bad[i % 4]} movie {i}", "neg") for i in range(24)]
