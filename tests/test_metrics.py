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


def test_binomial_tail_matches_the_exact_sum_and_survives_thousands_of_trials():
    from math import comb

    from textmaker.metrics import binomial_tail

    exact = 1 - sum(comb(120, k) * 0.02 ** k * 0.98 ** (120 - k) for k in range(4))
    assert binomial_tail(120, 4, 0.02) == pytest.approx(exact, rel=1e-9) and 0.2 < exact < 0.25
    assert binomial_tail(10, 10, 0.5) == pytest.approx(2 ** -10)
    assert binomial_tail(50, 0, 0.3) == 1.0 and binomial_tail(50, 1, 0.0) == 0.0 and binomial_tail(50, 51, 0.3) == 0.0
    # comb(5000, 2500) overflows a float: summed in log space it does not
    assert binomial_tail(5000, 2500, 0.5) == pytest.approx(0.5, abs=0.01)
    assert binomial_tail(5000, 220, 0.03) < 1e-6 < binomial_tail(5000, 160, 0.03) < 0.5
