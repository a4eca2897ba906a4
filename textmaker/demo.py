"""`textmaker demo`: the whole job on bundled data, in a few minutes on a laptop CPU.

Trains the average-word-embedding baseline and the MiniLM classifier on 1,200
SST-2 sentences, evaluates both on 300 held-out ones, saves the MiniLM model,
loads it back and labels new sentences with it.
"""

from __future__ import annotations

import time
from pathlib import Path

from textmaker.data import TextDataset
from textmaker.metrics import format_classification_report
from textmaker.tasks.classifier import TextClassifier

SAMPLE = Path(__file__).parent / "sample_data"
SENTENCES = ["a gripping, funny and beautifully acted film",
             "a tedious mess with no wit and no heart",
             "the plot drags, but the performances are worth the ticket"]


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run_demo(output: str | Path = "runs/demo") -> dict:
    output = Path(output)
    data = TextDataset.from_csv(SAMPLE / "sst2_sample_train.tsv", text_column="sentence")
    test = TextDataset.from_csv(SAMPLE / "sst2_sample_test.tsv", text_column="sentence")
    train, val = data.split(0.9, seed=0)
    _step("data")
    print(train.summary())

    results = {}
    for name, model, options in (("average word embedding", "average_word_embedding", {}),
                                 ("MiniLM-L6 fine-tuned", "minilm_l6_en_uncased", {"epochs": 3})):
        _step(f"train: {name}")
        t0 = time.perf_counter()
        clf = TextClassifier.create(train, val, model=model, **options)
        seconds = time.perf_counter() - t0
        _step(f"evaluate: {name} on {len(test)} held-out sentences ({seconds:.0f} s to train)")
        report = clf.evaluate(test, output_dir=output / "evaluation" / model)
        print(format_classification_report(report))
        results[model] = report["accuracy"]

    _step(f"save and load: {output / 'model'}")
    clf.save(output / "model")
    loaded = TextClassifier.load(output / "model")
    before, after = clf.predict(SENTENCES), loaded.predict(SENTENCES)
    assert before == after, "the loaded model disagrees with the saved one"
    print("files:", ", ".join(sorted(p.name for p in (output / "model").iterdir())))

    _step("predict with the loaded model")
    for text, preds in zip(SENTENCES, loaded.predict(SENTENCES, top_k=2)):
        print(f"  {preds[0].label:<8} {preds[0].score:.3f}  {text}")

    _step("summary")
    for model, acc in results.items():
        print(f"  {model:<24} test accuracy {acc:.3f}")
    print(f"  plots: {output / 'model' / 'training_curves.png'}, "
          f"{output / 'evaluation' / 'minilm_l6_en_uncased' / 'confusion_matrix.png'}")
    return results
