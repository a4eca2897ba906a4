"""Does every gold answer survive text -> WordPiece windows -> text? (issue 3's proof)

    python benchmarks/squad_roundtrip.py

For each gold answer of the 39 shared SQuAD articles, the answer's characters are mapped to
tokens inside each window (seq_len 384, query_len 64, doc_stride 128) and back through the
tokens' character offsets; a round trip counts when the text it gives equals the gold after
the official normalization. Failures are grouped by cause.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED  # noqa: E402

from textmaker.data import QADataset, QAExample  # noqa: E402
from textmaker.metrics import normalize_answer  # noqa: E402
from textmaker.presets import BUNDLED_VOCAB  # noqa: E402
from textmaker.tasks.qa_windows import WindowConfig, make_windows  # noqa: E402
from textmaker.text import WordPieceTokenizer  # noqa: E402


def main() -> None:
    ds = QADataset.from_squad(SHARED / "squad" / "squad-v1.1-dev-39articles.json")
    tok = WordPieceTokenizer(BUNDLED_VOCAB)
    cfg = WindowConfig(384, 64, 128)
    ok, causes, examples = 0, Counter(), {}
    for ex in ds.examples:
        for answer in ex.answers:
            one = QAExample(ex.id, ex.question, ex.context, [answer])
            windows = [w for w in make_windows(tok, [one], cfg) if w.start_position > 0]
            texts = {ex.context[w.offsets[w.start_position][0]:w.offsets[w.end_position][1]] for w in windows}
            if any(normalize_answer(t) == normalize_answer(answer.text) for t in texts):
                ok += 1
                continue
            got = next(iter(texts), "")
            if not windows:
                cause = "no window holds the whole answer"
            elif answer.text in got:
                cause = "answer boundary falls inside a word (tokens are whole words or word pieces)"
            else:
                cause = "other"
            causes[cause] += 1
            examples.setdefault(cause, []).append((answer.text, got))
    total = ok + sum(causes.values())
    print(f"round trip: {ok} of {total} gold answers ({100 * ok / total:.2f}%)")
    for cause, n in causes.most_common():
        shown = ", ".join(f"{g!r} -> {t!r}" for g, t in examples[cause][:6])
        print(f"  {n:3d}  {cause}: e.g. {shown}")


if __name__ == "__main__":
    main()
