"""SQuAD v1.1 (39 shared articles, split by article): textmaker QA against Hugging Face, in one run.

    python benchmarks/squad_qa.py --train-limit 1200 --eval-limit 400 --epochs 1

- textmaker: QuestionAnswerer on MiniLM (dynamic padding, length-grouped batches).
- textmaker-frozenN: the same with N bottom encoder layers (and the embeddings) kept as
             pre-trained (QuestionAnswerer's default is 0, every layer trained).
- textmaker-embeddings: the same with the word-embedding table fine-tuned too (kept by default;
             the peer fine-tunes it).
- textmaker@REV: textmaker as it was at git revision REV (a worktree under /tmp), with its own
             defaults, measured in the same run.
- hf:        the same encoder weights, AutoModelForQuestionAnswering + Trainer with the standard
             run_qa.py pre-processing (overflowing windows, offset mapping) and post-processing
             (n_best 20, max_answer_length 30 over all windows), at its best settings: bf16 where
             the hardware has it, optim="adamw_torch_fused", train_sampling_strategy=
             "group_by_length" and training windows padded per batch (run_qa's
             --pad_to_max_length False).
Same split, questions, seq_len, window overlap, epochs, batch size and learning rate. Both are
scored by textmaker.metrics.squad_evaluate (the official v1.1 definition, tested separately).

Windows: BertQaSpec's doc_stride (128) is the step between window starts; Hugging Face's
`stride` is the overlap between windows. The peer gets stride = seq_len - 3 - query_len -
doc_stride (189 tokens), the overlap textmaker's windows have for a 64-token question; for
shorter questions textmaker's windows overlap more, so it makes at least as many windows.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, checkout, import_outside_the_timing, peak_rss_mb, run_systems  # noqa: E402

SQUAD = SHARED / "squad" / "squad-v1.1-dev-39articles.json"


def data(a):
    from textmaker.data import QADataset

    train, val = QADataset.from_squad(SQUAD).split(0.8, seed=0)
    if a.train_limit:
        train = train.sample(a.train_limit, a.seed)
    if a.eval_limit:
        val = val.sample(a.eval_limit, a.seed)
    return train, val


def long_context(val) -> str:
    """One whole article of the held-out part: thousands of tokens, many windows."""
    title = val.examples[0].title
    return "\n".join(dict.fromkeys(e.context for e in val.examples if e.title == title))


def run_textmaker(a) -> dict:
    if a.system.startswith("textmaker@"):  # before anything imports textmaker
        sys.path.insert(0, str(checkout(a.system.split("@", 1)[1])))
    from textmaker.tasks.question_answer import QuestionAnswerer

    train, val = data(a)
    kw = {}
    if a.system.startswith("textmaker-frozen"):
        kw["frozen_layers"] = int(a.system.removeprefix("textmaker-frozen"))
    if a.system == "textmaker-embeddings":
        kw["train_word_embeddings"] = True
    import_outside_the_timing()
    t0 = time.perf_counter()
    qa = QuestionAnswerer.create(train, model="minilm_l6_en_uncased", epochs=a.epochs, batch_size=a.batch_size,
                                 learning_rate=a.learning_rate, seq_len=a.seq_len, doc_stride=a.doc_stride,
                                 seed=a.seed, progress=False, **kw)
    train_s = time.perf_counter() - t0
    windows = len(qa.make_windows(train.examples))
    t0 = time.perf_counter()
    m = qa.evaluate(val)
    eval_s = time.perf_counter() - t0
    auto = {}
    if hasattr(qa, "at_precision"):  # the trained fp32 weights computed as "auto" picks (an earlier REV may lack it)
        t0 = time.perf_counter()
        fast = qa.at_precision("auto")
        m_auto = fast.evaluate(val)
        auto = {"eval_auto_precision": fast.runner.precision, "exact_match_auto": m_auto["exact_match"],
                "f1_auto": m_auto["f1"], "eval_auto_seconds": time.perf_counter() - t0}
    context = long_context(val)

    def answer_seconds(model) -> float:
        model.answer("What is it?", context)  # warm-up
        times = []
        for q in [e.question for e in val.examples[:5]]:
            t0 = time.perf_counter()
            model.answer(q, context)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    if auto:
        auto["answer_auto_seconds_median"] = answer_seconds(fast)
    return {**auto, "system": a.system, "train_questions": len(train), "train_windows": windows, "epochs": a.epochs,
            "exact_match": m["exact_match"], "f1": m["f1"], "eval_questions": len(val),
            "train_seconds": train_s, "train_questions_per_second": len(train) * a.epochs / train_s,
            "train_windows_per_second": windows * a.epochs / train_s, "eval_seconds": eval_s,
            "long_context_chars": len(context), "answer_seconds_median": answer_seconds(qa),
            "peak_rss_mb": peak_rss_mb()}


def run_hf(a) -> dict:
    import torch
    from transformers import (AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)
    from transformers.utils import logging as hf_logging

    from textmaker.metrics import squad_evaluate
    from textmaker.presets import resolve

    hf_logging.set_verbosity_error()
    path = resolve("minilm_l6_en_uncased")["path"]
    train, val = data(a)
    # Timed from here, as textmaker's create() is: loading the model and making the windows count for both.
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(path)
    tok.model_max_length = 512
    model = AutoModelForQuestionAnswering.from_pretrained(path)
    overlap = a.seq_len - 3 - 64 - a.doc_stride  # the overlap textmaker's step leaves with a full question

    def encode(examples, train_mode):
        enc = tok([e.question.lstrip() for e in examples], [e.context for e in examples], truncation="only_second",
                  max_length=a.seq_len, stride=overlap, return_overflowing_tokens=True, return_offsets_mapping=True,
                  padding=False if train_mode else "max_length")
        feats = []
        for i in range(len(enc["input_ids"])):
            ex_i = enc["overflow_to_sample_mapping"][i]
            seq = enc.sequence_ids(i)
            offsets = enc["offset_mapping"][i]
            f = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "token_type_ids": enc["token_type_ids"][i]}
            if train_mode:  # run_qa.py's prepare_train_features
                ans = examples[ex_i].answers[0]
                s_char, e_char = ans.start, ans.end
                ts = seq.index(1)
                te = len(seq) - 1 - seq[::-1].index(1)
                if not (offsets[ts][0] <= s_char and offsets[te][1] >= e_char):
                    f["start_positions"] = f["end_positions"] = 0
                else:
                    while ts < len(offsets) and offsets[ts][0] <= s_char:
                        ts += 1
                    while offsets[te][1] >= e_char:
                        te -= 1
                    f["start_positions"], f["end_positions"] = ts - 1, te + 1
            else:
                f["example"] = ex_i
                f["offsets"] = [o if seq[k] == 1 else None for k, o in enumerate(offsets)]
            feats.append(f)
        return feats

    class DS(torch.utils.data.Dataset):
        def __init__(self, feats):
            self.feats = feats

        def __len__(self):
            return len(self.feats)

        def __getitem__(self, i):
            return {k: v for k, v in self.feats[i].items() if k not in ("example", "offsets")}

    train_feats = encode(train.examples, True)
    from textmaker.precision import resolve as resolve_precision

    # The peer at its best: bf16 exactly where textmaker's "auto" picks it (the same hardware test).
    bf16 = resolve_precision("auto", torch.device("cuda" if torch.cuda.is_available() else "cpu")) == "bf16"
    args = TrainingArguments(output_dir="/tmp/hf_squad", per_device_train_batch_size=a.batch_size,
                             per_device_eval_batch_size=64, learning_rate=a.learning_rate, num_train_epochs=a.epochs,
                             warmup_steps=0.1, weight_decay=0.01, lr_scheduler_type="linear", seed=a.seed,
                             report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True,
                             use_cpu=not torch.cuda.is_available(), bf16=bf16, optim="adamw_torch_fused",
                             train_sampling_strategy="group_by_length")
    # Training windows padded per batch; evaluation windows stay max_length (their offsets line up).
    trainer = Trainer(model=model, args=args, train_dataset=DS(train_feats),
                      data_collator=DataCollatorWithPadding(tok), processing_class=tok)
    trainer.train()
    train_s = time.perf_counter() - t0

    def decode(examples, feats, start_logits, end_logits) -> dict[str, str]:
        """run_qa.py's postprocess_qa_predictions (v1.1): best of the 20x20 spans over all windows."""
        by_ex = collections.defaultdict(list)
        for i, f in enumerate(feats):
            by_ex[f["example"]].append(i)
        preds = {}
        for ex_i, ex in enumerate(examples):
            cands = []
            for fi in by_ex[ex_i]:
                s, e, offs = start_logits[fi], end_logits[fi], feats[fi]["offsets"]
                for si in np.argsort(s)[-1:-21:-1]:
                    for ei in np.argsort(e)[-1:-21:-1]:
                        if si >= len(offs) or ei >= len(offs) or offs[si] is None or offs[ei] is None:
                            continue
                        if ei < si or ei - si + 1 > 30:
                            continue
                        cands.append((s[si] + e[ei], offs[si][0], offs[ei][1]))
            best = max(cands) if cands else (0, 0, 0)
            preds[ex.id] = ex.context[best[1]:best[2]]
        return preds

    t0 = time.perf_counter()
    eval_feats = encode(val.examples, False)
    # In evaluation too, group_by_length would reorder the windows; the decoding needs them in order.
    trainer.args.train_sampling_strategy = "random"
    start_logits, end_logits = trainer.predict(DS(eval_feats)).predictions
    preds = decode(val.examples, eval_feats, start_logits, end_logits)
    eval_s = time.perf_counter() - t0
    m = squad_evaluate({e.id: [x.text for x in e.answers] for e in val.examples}, preds)

    # One question on a long context, as the (v4) question-answering pipeline ran it: the same
    # pre-processing, one forward pass over every window, the same post-processing.
    from textmaker.data import QAExample

    # With bf16, accelerate has left this model's forward wrapped in bf16 autocast (its outputs cast to
    # fp32): the peer answers in bf16, like textmaker's answer() at "auto", not like its fp32 default.
    model = trainer.model.eval()

    def answer(question: str, context: str) -> str:
        ex = QAExample("q", question, context, [])
        feats = encode([ex], False)
        batch = {k: torch.tensor([f[k] for f in feats]) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            out = model(**batch)
        return decode([ex], feats, out.start_logits.numpy(), out.end_logits.numpy())["q"]

    context = long_context(val)
    answer("What is it?", context)
    times = []
    for q in [e.question for e in val.examples[:5]]:
        t0 = time.perf_counter()
        answer(q, context)
        times.append(time.perf_counter() - t0)
    return {"system": "hf", "train_questions": len(train), "train_windows": len(train_feats), "epochs": a.epochs,
            "exact_match": m["exact_match"], "f1": m["f1"], "eval_questions": len(val),
            "train_seconds": train_s, "train_questions_per_second": len(train) * a.epochs / train_s,
            "train_windows_per_second": len(train_feats) * a.epochs / train_s, "eval_seconds": eval_s,
            "long_context_chars": len(context), "answer_seconds_median": statistics.median(times),
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-limit", type=int, default=1200, help="training questions (0: all ~7,000)")
    p.add_argument("--eval-limit", type=int, default=400, help="held-out questions (0: all ~1,600)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=8e-5)
    p.add_argument("--seq-len", type=int, default=384)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--systems", default="textmaker,hf")
    p.add_argument("--system", help=argparse.SUPPRESS)
    p.add_argument("--out", default="benchmarks/out/squad.json")
    a = p.parse_args()
    if a.system:
        print(json.dumps(run_hf(a) if a.system == "hf" else run_textmaker(a)))
        return
    results = run_systems(__file__, a)
    print("\n| system | train questions (windows) x epochs | EM | F1 | train questions/s | answer() on "
          "a long context | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in results.values():
        print(f"| {r['system']} | {r['train_questions']} ({r['train_windows']}) x {r['epochs']} | "
              f"{r['exact_match']:.2f} | {r['f1']:.2f} | {r['train_questions_per_second']:.2f} | "
              f"{1000 * r['answer_seconds_median']:.0f} ms ({r['long_context_chars']} chars) | {r['peak_rss_mb']:.0f} |")
    print("\nSeconds to answer and score the held-out questions: textmaker's trained fp32 weights as saved and "
          "at `at_precision(\"auto\")`; the Trainer as it trained (bf16 autocast where the hardware has it):\n\n"
          "| system | as saved / the Trainer | auto (precision) | EM / F1 at auto | answer() at auto |\n"
          "|---|---|---|---|---|")
    for r in results.values():
        auto = (f"{r['eval_auto_seconds']:.1f} ({r['eval_auto_precision']}) | {r['exact_match_auto']:.2f} / "
                f"{r['f1_auto']:.2f} | {1000 * r['answer_auto_seconds_median']:.0f} ms") \
            if "eval_auto_seconds" in r else "| |"
        print(f"| {r['system']} | {r['eval_seconds']:.1f} | {auto} |")
    if "textmaker" in results and "hf" in results:
        t, h = results["textmaker"], results["hf"]
        print(f"\ntextmaker / HF: training {t['train_questions_per_second'] / h['train_questions_per_second']:.2f}x, "
              f"answer() {h['answer_seconds_median'] / t['answer_seconds_median']:.2f}x faster, "
              f"EM {t['exact_match'] - h['exact_match']:+.2f}, F1 {t['f1'] - h['f1']:+.2f}")


if __name__ == "__main__":
    main()
