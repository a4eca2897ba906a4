"""From start/end logits over windows to answers in the original context.

Per window, the n_best_size best start and end tokens among the context tokens
are paired; spans that end before they start, run past max_answer_length, or
touch the question or padding are refused. The best span across all windows of
an example wins. For SQuAD v2.0 the null answer's score (the smallest [CLS]
start+end score over the windows, as BERT's run_squad takes it) competes with
the best span through null_score_diff_threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from textmaker.tasks.qa_windows import Window


@dataclass
class Span:
    text: str
    score: float  # start logit + end logit
    start: int  # character offsets in the context; (0, 0) for the null answer
    end: int
    start_logit: float
    end_logit: float
    probability: float = 0.0


@dataclass
class DecodeConfig:
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0


def decode_example(context: str, windows: Sequence[Window], starts: Sequence[np.ndarray],
                   ends: Sequence[np.ndarray], cfg: DecodeConfig, with_null: bool = False) -> tuple[list[Span], float]:
    """-> (n-best spans, best first, with probabilities; null score). A span repeated across windows keeps its best score."""
    best: dict[tuple[int, int], Span] = {}
    null_score = float("inf")
    for w, s_logits, e_logits in zip(windows, starts, ends):
        s_logits, e_logits = np.asarray(s_logits, dtype=np.float64), np.asarray(e_logits, dtype=np.float64)
        null_score = min(null_score, s_logits[0] + e_logits[0])
        ctx = np.array([i for i, o in enumerate(w.offsets) if o is not None and i < len(s_logits)])
        if ctx.size == 0:
            continue
        top_s = ctx[np.argsort(-s_logits[ctx], kind="stable")[: cfg.n_best_size]]
        top_e = ctx[np.argsort(-e_logits[ctx], kind="stable")[: cfg.n_best_size]]
        for i in top_s:
            for j in top_e:
                if j < i or j - i + 1 > cfg.max_answer_length:
                    continue
                start, end = w.offsets[i][0], w.offsets[j][1]
                score = s_logits[i] + e_logits[j]
                if (start, end) not in best or score > best[(start, end)].score:
                    best[(start, end)] = Span(context[start:end], float(score), start, end,
                                              float(s_logits[i]), float(e_logits[j]))
    spans = sorted(best.values(), key=lambda sp: -sp.score)[: cfg.n_best_size]
    if with_null or not spans:
        null = Span("", float(null_score), 0, 0, float("nan"), float("nan"))
        spans = sorted(spans + [null], key=lambda sp: -sp.score)[: cfg.n_best_size]
    scores = np.array([sp.score for sp in spans])
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    for sp, p in zip(spans, probs):
        sp.probability = float(p)
    return spans, float(null_score)


def choose(spans: list[Span], null_score: float, cfg: DecodeConfig, with_null: bool) -> tuple[str, float]:
    """-> (answer text, null odds). v1.1 always answers; v2.0 abstains past the threshold."""
    non_null = [sp for sp in spans if sp.end > sp.start]
    best = non_null[0] if non_null else None
    best_score = best.score if best else -float("inf")
    null_odds = null_score - best_score
    if best is None or (with_null and null_odds > cfg.null_score_diff_threshold):
        return "", null_odds
    return best.text, null_odds
