"""Evaluation metrics: classification, and the official SQuAD EM/F1 definition."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Sequence

import numpy as np


# ---- classification ----------------------------------------------------

def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.exp(log_softmax(logits, axis))


def cross_entropy(logits: np.ndarray, y: Sequence[int]) -> float:
    """Mean negative log-likelihood of the true classes (torch's F.cross_entropy, in NumPy)."""
    y = np.asarray(y)
    return float(-log_softmax(logits.astype(np.float64))[np.arange(len(y)), y].mean()) if len(y) else 0.0


DENSE_MATRIX_MAX = 1000


def binomial_tail(n: int, k: int, rate: float) -> float:
    """P(X >= k) for X ~ Binomial(n, rate): a one-sided test's p-value. Summed in log space, so
    thousands of trials do not overflow."""
    if k <= 0 or rate >= 1:
        return 1.0
    if rate <= 0 or k > n:
        return 0.0
    log_rate, log_rest, log_n = math.log(rate), math.log1p(-rate), math.lgamma(n + 1)
    return min(1.0, sum(math.exp(log_n - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_rate
                                 + (n - j) * log_rest) for j in range(k, n + 1)))


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str],
                          loss: float | None = None) -> dict:
    """accuracy, per-class precision/recall/F1/support, macro averages, confusion matrix.

    confusion_matrix[i][j] counts examples of true class i predicted as class j. Past
    DENSE_MATRIX_MAX classes (a k x k matrix of 100,000 classes is 80 GB) it is given as
    confusion_pairs instead: [true, predicted, count] for the pairs that occur.
    A class never predicted has precision 0 (and never present, recall 0), as scikit-learn's zero_division=0.
    """
    k = len(label_names)
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    tp = np.bincount(y_true[y_true == y_pred], minlength=k).astype(float)
    predicted, actual = np.bincount(y_pred, minlength=k), np.bincount(y_true, minlength=k)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    report = {
        "examples": int(len(y_true)),
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(actual[i])}
                      for i, name in enumerate(label_names)},
        "label_names": list(label_names),
    }
    if k <= DENSE_MATRIX_MAX:
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (y_true, y_pred), 1)
        report["confusion_matrix"] = cm.tolist()
    else:
        pairs, counts = np.unique(np.stack([y_true, y_pred], 1), axis=0, return_counts=True)
        report["confusion_pairs"] = [[int(t), int(p), int(c)] for (t, p), c in zip(pairs, counts)]
    if loss is not None:
        report = {"loss": float(loss), **report}
    return report


def format_classification_report(r: dict, max_classes: int = 50) -> str:
    width = min(40, max(8, *(len(n) for n in r["label_names"][:max_classes])))
    lines = []
    if "loss" in r:
        lines.append(f"loss      {r['loss']:.4f}")
    lines += [f"accuracy  {r['accuracy']:.4f}  ({r['examples']} examples)", f"macro-F1  {r['macro_f1']:.4f}", "",
              f"{'class':<{width}}  precision  recall     f1  support"]
    for i, (name, m) in enumerate(r["per_class"].items()):
        if i == max_classes:
            lines.append(f"... {len(r['per_class']) - max_classes} more classes (all of them in metrics.json)")
            break
        lines.append(f"{name:<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:.4f}  {m['support']:7d}")
    if len(r["label_names"]) <= 12:  # a matrix wider than a terminal is no help
        lines += ["", "confusion matrix (rows: true, columns: predicted)"]
        lines += ["  " + " ".join(f"{v:6d}" for v in row) + f"  {name}" for name, row in
                  zip(r["label_names"], r["confusion_matrix"])]
    return "\n".join(lines)


# ---- SQuAD (the official v1.1 / v2.0 evaluation scripts' definitions) ----

def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:  # v2.0: an empty answer scores 1 only against an empty gold
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def max_over_golds(metric, prediction: str, golds: Sequence[str]) -> float:
    # v2.0 scores an unanswerable question (no gold) against the empty string.
    return max(metric(prediction, g) for g in (golds or [""]))


def squad_evaluate(golds: dict[str, list[str]], predictions: dict[str, str],
                   null_odds: dict[str, float] | None = None) -> dict:
    """EM and F1 (0-100) as the official SQuAD scripts compute them.

    golds maps question id -> gold answer texts ([] for an unanswerable question).
    With unanswerable questions present (v2.0), adds HasAns_/NoAns_ scores and, given
    null_odds, the best threshold search of the official v2.0 script.
    """
    missing = [q for q in golds if q not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction, e.g. {missing[0]}")
    exact, f1 = {}, {}
    for qid, answers in golds.items():
        answers = [a for a in answers if normalize_answer(a)]
        exact[qid] = max_over_golds(exact_match, predictions[qid], answers)
        f1[qid] = max_over_golds(f1_score, predictions[qid], answers)
    out = {"exact_match": 100 * sum(exact.values()) / len(golds), "f1": 100 * sum(f1.values()) / len(golds),
           "total": len(golds)}
    has_ans = {q for q, a in golds.items() if any(normalize_answer(x) for x in a)}
    if len(has_ans) < len(golds):
        for name, ids in (("HasAns", has_ans), ("NoAns", set(golds) - has_ans)):
            if ids:
                out[f"{name}_exact"] = 100 * sum(exact[q] for q in ids) / len(ids)
                out[f"{name}_f1"] = 100 * sum(f1[q] for q in ids) / len(ids)
                out[f"{name}_total"] = len(ids)
        if null_odds is not None:
            for name, raw in (("exact", exact), ("f1", f1)):
                score, thresh = _best_threshold(predictions, raw, null_odds, has_ans)
                out[f"best_{name}"], out[f"best_{name}_thresh"] = score, thresh
    return out


def _best_threshold(preds: dict, scores: dict, na_probs: dict, has_ans: set) -> tuple[float, float]:
    """The official v2.0 script's find_best_thresh: abstain on every question scored above the threshold."""
    cur = best = sum(1 for q in scores if q not in has_ans)
    best_thresh = 0.0
    for qid in sorted(scores, key=lambda q: na_probs[q]):
        if qid in has_ans:
            diff = scores[qid]
        else:
            diff = -1 if preds[qid] else 0
        cur += diff
        if cur > best:
            best, best_thresh = cur, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh
