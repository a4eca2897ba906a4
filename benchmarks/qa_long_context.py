"""Where the time of answer() on a long context goes, against transformers on the same machine.

    python benchmarks/qa_long_context.py [--rounds 3]

One whole held-out SQuAD article (the one squad_qa.py times) and one of its questions. A MiniLM
QuestionAnswerer is created with one optimizer step (its weights do not change the speed), saved,
and loaded by transformers' AutoModelForQuestionAnswering from the same directory. Timed, the ways
alternating round by round, medians:
- textmaker answer(): windows, one fp32 forward over all of them, decoding;
- textmaker's network alone over its windows (doc_stride 128: the step between window starts,
  as BertQaSpec and Google's run_squad define it);
- transformers' model over the same windows, padded to 384;
- transformers' model over the windows squad_qa.py's peer makes (HF's `stride` is the overlap:
  384 - 3 - 64 - 128 = 189 tokens, the overlap textmaker leaves for a 64-token question).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import squad_qa  # noqa: E402
from common import machine  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from textmaker.batching import pad_batch
    from textmaker.data import QAExample
    from textmaker.tasks.question_answer import QuestionAnswerer

    args = argparse.Namespace(train_limit=32, eval_limit=0, seed=0)
    train, val = squad_qa.data(args)
    qa = QuestionAnswerer.create(train, model="minilm_l6_en_uncased", epochs=1, max_steps=1, progress=False)
    context, question = squad_qa.long_context(val), val.examples[0].question
    with tempfile.TemporaryDirectory() as d:
        qa.save(d)
        hf = AutoModelForQuestionAnswering.from_pretrained(d).eval()
        tok = AutoTokenizer.from_pretrained(d)
    ours = [w.row() for w in qa.make_windows([QAExample("q", question, context, [])])]
    enc = tok(question, context, truncation="only_second", max_length=384, stride=384 - 3 - 64 - 128,
              return_overflowing_tokens=True, padding="max_length")
    theirs = {k: torch.tensor(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    same = {k: torch.from_numpy(v) for k, v in pad_batch(ours, qa.preprocessor.pad_id, 384).items()
            if k in theirs}  # the network's inputs, not the rows' gold positions
    ways = {
        "textmaker answer()": lambda: qa.answer(question, context),
        "textmaker network, its windows": lambda: qa.network(same["input_ids"], same["attention_mask"],
                                                             same["token_type_ids"]),
        "transformers, textmaker's windows": lambda: hf(**same),
        "transformers, the peer's windows": lambda: hf(**theirs),
    }
    seconds = {name: [] for name in ways}
    with torch.no_grad():
        for name in ways:  # warm-up: oneDNN builds its kernels once per shape
            ways[name]()
        for r in range(a.rounds):
            for name in (list(ways) if r % 2 else list(ways)[::-1]):
                t0 = time.perf_counter()
                ways[name]()
                seconds[name].append(time.perf_counter() - t0)
    windows = {"textmaker answer()": len(ours), "textmaker network, its windows": len(ours),
               "transformers, textmaker's windows": len(ours), "transformers, the peer's windows": len(enc["input_ids"])}
    print(f"{machine()}; {len(context):,} characters, {a.rounds} rounds\n")
    print("| way | windows | seconds (median) | ms per window |")
    print("|---|---|---|---|")
    for name, s in seconds.items():
        m = statistics.median(s)
        print(f"| {name} | {windows[name]} | {m:.2f} | {1e3 * m / windows[name]:.0f} |")


if __name__ == "__main__":
    main()
