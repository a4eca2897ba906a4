"""The SQuAD EM/F1 definition, checked by hand against the official scripts' behaviour."""

import pytest

from textmaker.metrics import exact_match, f1_score, normalize_answer, squad_evaluate


def test_normalization_matches_the_official_script():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("Theatre of the absurd") == "theatre of absurd"  # 'the' only as a word
    assert normalize_answer("U.S.A.") == "usa"
    assert normalize_answer("  ") == ""


def test_articles_and_punctuation_do_not_count():
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0


def test_f1_is_token_overlap():
    assert f1_score("Denver Broncos team", "the Denver Broncos") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert f1_score("Carolina", "Denver Broncos") == 0.0
    assert f1_score("a a b", "a b b") == pytest.approx(2 / 3)  # counts, not sets


def test_multiple_golds_take_the_max_and_empty_prediction_scores_zero():
    golds = {"q1": ["Denver Broncos", "The Broncos", "Broncos"], "q2": ["1990"], "q3": ["Santa Clara, California"]}
    preds = {"q1": "broncos", "q2": "", "q3": "Santa Clara"}
    r = squad_evaluate(golds, preds)
    assert r["exact_match"] == pytest.approx(100 / 3)
    assert r["f1"] == pytest.approx(100 * (1 + 0 + 2 * 1 * (2 / 3) / (1 + 2 / 3)) / 3)
    assert "HasAns_exact" not in r


def test_v2_unanswerable_and_best_threshold():
    golds = {"a": ["Paris"], "b": [], "c": [], "d": ["1066"]}
    preds = {"a": "Paris", "b": "", "c": "London", "d": ""}
    null_odds = {"a": -3.0, "b": 2.0, "c": 0.5, "d": 1.0}
    r = squad_evaluate(golds, preds, null_odds)
    assert r["exact_match"] == 50.0  # a right, b right (abstained), c wrong, d wrong
    assert r["HasAns_exact"] == 50.0 and r["NoAns_exact"] == 50.0
    assert r["HasAns_total"] == 2 and r["NoAns_total"] == 2
    # The official find_best_thresh: starting from "abstain everywhere" (b, c right: 2 of 4), answer in
    # order of null odds: a (+1 -> 3), c (-1), d (+0), b (+0). Best: 3 of 4, abstaining above -3.0.
    assert r["best_exact"] == 75.0 and r["best_exact_thresh"] == -3.0
    assert r["best_f1"] == 75.0 and r["best_f1_thresh"] == -3.0


def test_missing_prediction_is_an_error():
    with pytest.raises(ValueError, match="no prediction"):
        squad_evaluate({"q": ["x"]}, {})
