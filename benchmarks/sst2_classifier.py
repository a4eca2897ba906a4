"""SST-2: textmaker's classifiers against Hugging Face transformers' Trainer, in one run.

    python benchmarks/sst2_classifier.py --limit 8000 --epochs 2

- awe:            the average-word-embedding baseline on the FULL train set (it is cheap);
- textmaker:      MiniLM fine-tuned by textmaker on `--limit` training sentences (precision auto:
                  bf16 where the CPU has AMX / AVX-512 BF16, else fp32; fused AdamW);
- textmaker-fp32: the same in fp32, to show what mixed precision changes;
- textmaker-embeddings: the same, fine-tuning the word-embedding table too (as the peer does;
                  textmaker keeps a pre-trained table as it is by default);
- textmaker-frozenN: the same with N bottom encoder layers (and the embeddings) kept as
                  pre-trained (textmaker's MiniLM default is 1; textmaker-frozen0 trains every layer);
- textmaker@REV:  textmaker as it was at git revision REV (a worktree under /tmp), with its own
                  defaults: "today's" speed, measured in the same run;
- hf:             the same encoder weights, AutoModelForSequenceClassification + Trainer +
                  DataCollatorWithPadding at its best settings: bf16 where the CPU has it,
                  optim="adamw_torch_fused", train_sampling_strategy="group_by_length"; same subset,
                  seq_len, batch, epochs, learning rate.
Each runs in its own process (peak memory is per system). Accuracy is on the whole dev set.
`--rounds N` runs every system N times, alternating the order, and prints the ratios round by
round with their median: this project's CPUs drift in speed by 10-25% within an hour.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, checkout, import_outside_the_timing, machine, peak_rss_mb, run_systems  # noqa: E402


def load(limit: int | None, seed: int):
    from textmaker import TextDataset

    train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
    dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    return (train.sample(limit, seed) if limit else train), dev


def run_textmaker(a) -> dict:
    earlier = a.system.startswith("textmaker@")
    if earlier:  # before anything imports textmaker
        sys.path.insert(0, str(checkout(a.system.split("@", 1)[1])))
    from textmaker import TextClassifier

    model = "average_word_embedding" if a.system == "awe" else "minilm_l6_en_uncased"
    train, dev = load(None if a.system == "awe" else a.limit, a.seed)
    kw = {} if a.system == "awe" else dict(epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.learning_rate,
                                           seq_len=a.seq_len)
    if not earlier:  # an earlier revision runs with its own defaults (it may predate these options)
        kw["precision"] = "fp32" if a.system == "textmaker-fp32" else "auto"
    if a.system == "textmaker-embeddings":
        kw["train_word_embeddings"] = True
    if a.system.startswith("textmaker-frozen"):
        kw["frozen_layers"] = int(a.system.removeprefix("textmaker-frozen"))
    import_outside_the_timing()
    t0 = time.perf_counter()
    clf = TextClassifier.create(train, model=model, seed=a.seed, progress=False, **kw)
    train_s = time.perf_counter() - t0
    epochs = clf.config["training"]["epochs"]
    # without the 200 held out to check exports on (earlier revisions record the rate and time only)
    trained = sum(h.get("train_examples", h["train_examples_per_second"] * h["train_seconds"]) for h in clf.history)
    looped = sum(h["train_seconds"] for h in clf.history)
    t0 = time.perf_counter()
    report = clf.evaluate(dev)
    predict_s = time.perf_counter() - t0
    auto = {}
    if hasattr(clf, "at_precision"):  # the trained fp32 weights computed as "auto" picks (an earlier REV may lack it)
        t0 = time.perf_counter()
        fast = clf.at_precision("auto")  # the copy in bf16 is timed too
        r = fast.evaluate(dev)
        auto = {"predict_auto_precision": fast.runner.precision, "accuracy_auto": r["accuracy"],
                "predict_auto_examples_per_second": len(dev) / (time.perf_counter() - t0)}
    return {**auto, "system": a.system, "precision": clf.history[-1].get("precision", "fp32"),
            "train_examples": len(train), "epochs": epochs, "accuracy": report["accuracy"],
            "train_seconds": train_s, "train_examples_per_second": trained / train_s,
            "loop_examples_per_second": trained / looped,
            "predict_examples_per_second": len(dev) / predict_s, "peak_rss_mb": peak_rss_mb()}


def run_hf(a) -> dict:
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)
    from transformers.utils import logging as hf_logging

    from textmaker.presets import resolve

    hf_logging.set_verbosity_error()
    path = resolve("minilm_l6_en_uncased")["path"]
    train, dev = load(a.limit, a.seed)
    from textmaker.precision import resolve as resolve_precision

    # The peer at its best: bf16 exactly where textmaker's "auto" picks it (the same hardware test).
    bf16 = resolve_precision("auto", torch.device("cuda" if torch.cuda.is_available() else "cpu")) == "bf16"
    # Timed from here, as textmaker's create() is: loading the model and tokenizing count for both.
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    class DS(torch.utils.data.Dataset):
        def __init__(self, d):
            self.enc = tok(d.texts, truncation=True, max_length=a.seq_len)
            self.labels = d.label_ids

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return {"input_ids": self.enc["input_ids"][i], "token_type_ids": self.enc["token_type_ids"][i],
                    "attention_mask": self.enc["attention_mask"][i], "labels": self.labels[i]}

    args = TrainingArguments(output_dir="/tmp/hf_sst2", per_device_train_batch_size=a.batch_size,
                             per_device_eval_batch_size=64, learning_rate=a.learning_rate,
                             num_train_epochs=a.epochs, warmup_steps=0.1, weight_decay=0.01,
                             lr_scheduler_type="linear", seed=a.seed, report_to=[], save_strategy="no",
                             logging_strategy="no", disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
                             bf16=bf16, optim="adamw_torch_fused", train_sampling_strategy="group_by_length")
    trainer = Trainer(model=model, args=args, train_dataset=DS(train), data_collator=DataCollatorWithPadding(tok))
    loop = trainer.train().metrics["train_samples_per_second"]
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = trainer.predict(DS(dev))
    predict_s = time.perf_counter() - t0
    # pred.label_ids, not dev's order: the Trainer may order evaluation batches by length too.
    acc = float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())
    return {"system": "hf", "precision": "bf16" if bf16 else "fp32", "train_examples": len(train), "epochs": a.epochs,
            "accuracy": acc,
            "train_seconds": train_s, "train_examples_per_second": len(train) * a.epochs / train_s,
            "loop_examples_per_second": loop, "predict_examples_per_second": len(dev) / predict_s, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=8000, help="training sentences for the MiniLM runs (0: all 67,349)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--systems", default="awe,textmaker,textmaker-fp32,hf")
    p.add_argument("--system", help=argparse.SUPPRESS)
    p.add_argument("--out", default="benchmarks/out/sst2.json")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every system this many times, alternating the order (for a drifting CPU's speed)")
    a = p.parse_args()
    if a.system:
        print(json.dumps(run_hf(a) if a.system == "hf" else run_textmaker(a)))
        return
    results = run_systems(__file__, a, a.rounds)
    runs = results if a.rounds > 1 else {k: [v] for k, v in results.items()}
    print(f"\n{machine()}\n\n| system | round | precision | train examples x epochs | dev accuracy | train ex/s "
          f"| loop ex/s | predict ex/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rs in runs.values():
        for r in rs:
            print(f"| {r['system']} | {r.get('round', 1)} | {r.get('precision', '')} | {r['train_examples']} x {r['epochs']} "
                  f"| {100 * r['accuracy']:.2f}% | {r['train_examples_per_second']:.1f} "
                  f"| {r.get('loop_examples_per_second', float('nan')):.1f} | {r['predict_examples_per_second']:.1f} "
                  f"| {r['peak_rss_mb']:.0f} |")
    print("\ntrain ex/s: examples over the time from loading the model to the trained model (create(), or the "
          "Trainer's loading, tokenization, set-up and train()); loop ex/s: over the trainer's own epoch time.")
    auto = [r for rs in runs.values() for r in rs if "predict_auto_examples_per_second" in r]
    if auto:
        print("\nThe same trained weights predicting the dev set at `at_precision(\"auto\")` (fp32 above):\n\n"
              "| system | round | precision | dev accuracy | predict ex/s |\n|---|---|---|---|---|")
        for r in auto:
            print(f"| {r['system']} | {r.get('round', 1)} | {r['predict_auto_precision']} | {100 * r['accuracy_auto']:.2f}% "
                  f"| {r['predict_auto_examples_per_second']:.1f} |")
    if "textmaker" not in runs:
        return
    for name in runs:
        if name != "textmaker" and (name == "hf" or name.startswith("textmaker@")):
            ratios = ratio_lines(runs["textmaker"], runs[name])
            print(f"textmaker / {name}: {ratios}")


def ratio_lines(ours: list[dict], theirs: list[dict]) -> str:
    """Per-round ratios (round by round: the runs of one round are the ones measured side by side)."""
    def each(key: str, their_key: str) -> list[float]:  # their own figure for key where they have one
        return [o[key] / (t.get(key) or t[their_key]) for o, t in zip(ours, theirs)
                if o.get(key) and (t.get(key) or t.get(their_key))]

    parts = []
    for key, their_key, what in (
            ("train_examples_per_second", "train_examples_per_second", "training"),
            ("loop_examples_per_second", "loop_examples_per_second", "training loop"),
            ("predict_examples_per_second", "predict_examples_per_second", "prediction"),
            # the HF peer predicts as it trained (bf16 autocast where the hardware has it); a textmaker
            # revision has its own figure at auto, which `each` takes
            ("predict_auto_examples_per_second", "predict_examples_per_second", "prediction at auto")):
        r = each(key, their_key)
        if r:
            parts.append(f"{what} {', '.join(f'{x:.2f}x' for x in r)}"
                         + (f" (median {statistics.median(r):.2f}x)" if len(r) > 1 else ""))
    accuracy = [100 * (o["accuracy"] - t["accuracy"]) for o, t in zip(ours, theirs)]
    parts.append(f"accuracy {', '.join(f'{x:+.2f}' for x in accuracy)} points")
    return "; ".join(parts)

if __name__ == "__main__":
    main()
