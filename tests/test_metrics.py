import pytest

from textmaker.metrics import classification_report, exact_match, f1_score, format_classification_report


def test_classification_report_by_hand():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 0, 1]
    r = classification_report(y_true, y_pred, ["a", "b", "c"], loss=0.5)
    assert r["accuracy"] == pytest.approx(3 / 6)
    assert r["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 1, 0]]
    assert r["per_class"]["a"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
                                   "f1": pytest.approx(2 / 3), "support": 3}
    assert r["per_class"]["b"]["precision"] == pytest.approx(1 / 3)
    assert r["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.4 + 0) / 3)
    text = format_classification_report(r)
    assert "accuracy  0.5000" in text and "confusion matrix" in text


def test_squad_normalization_basics():
    assert exact_match("The Eiffel Tower!", "eiffel tower")
    assert f1_score("in the year 1990", "1990") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
