"""`textmaker demo`: the whole job on bundled data, in a few minutes on a laptop CPU.

Trains the average-word-embedding baseline and the MiniLM classifier on 1,200
SST-2 sentences, evaluates both on 300 held-out ones, saves the MiniLM model,
loads it back, exports it to a verified int8 ONNX file and to an int8 TFLite file
that MediaPipe Tasks runs as it is, and labels new sentences with each.
"""

from __future__ import annotations

import time
from pathlib import Path

from textmaker.data import TextDataset
from textmaker.errors import TextmakerError
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

    _step(f"export: ONNX with dynamic int8 quantization, verified on the test sentences: {output / 'onnx'}")
    from textmaker.export import ExportedModel, export

    meta = export(loaded, output / "onnx", "onnx", "dynamic", representative_data=test)
    exported = ExportedModel.load(output / "onnx")
    print(f"  {meta['size_bytes'] / 1e6:.1f} MB; files: {', '.join(sorted(p.name for p in (output / 'onnx').iterdir()))}")
    for text, preds in zip(SENTENCES, exported.predict(SENTENCES)):
        print(f"  {preds[0].label:<8} {preds[0].score:.3f}  {text}  (ONNX Runtime)")
    results["onnx dynamic int8"] = meta["verification"]["exported_accuracy"]

    _step(f"export: TFLite with dynamic int8 quantization for apps, run by MediaPipe Tasks: {output / 'tflite'}")
    try:
        meta = export(loaded, output / "tflite", "tflite", "dynamic", representative_data=test)
    except TextmakerError as e:  # the [tflite] extra is optional
        print(f"  skipped: {e}")
    else:
        from textmaker.export.mediapipe_client import MediaPipeTextClassifier

        app = MediaPipeTextClassifier(output / "tflite" / "model.tflite")  # its own tokenizer, from the file
        for text in SENTENCES:
            label, score = app.classify(text)[0]
            print(f"  {label:<8} {score:.3f}  {text}  (MediaPipe Tasks)")
        app.close()
        results["tflite dynamic int8 (MediaPipe)"] = meta["verification"]["exported_accuracy"]

    _step("summary")
    for model, acc in results.items():
        print(f"  {model:<24} test accuracy {acc:.3f}")
    print(f"  plots: {output / 'model' / 'training_curves.png'}, "
          f"{output / 'evaluation' / 'minilm_l6_en_uncased' / 'confusion_matrix.png'}")
    return results
