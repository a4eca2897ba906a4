"""Export a trained task, then prove the exported file agrees with it.

Every export runs the exported file on a sample (the user's validation data, or
else text made from the model's vocabulary) and compares it with the PyTorch
model: label (or answer span) agreement, the largest logit difference, and the
accuracy (or F1) change where the sample is labelled. The figures go into
metadata.json; past the tolerance the export fails with them and leaves nothing
behind that looks finished (quantized models that silently lose accuracy are the
failure this guards against).
"""

from __future__ import annotations

import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from textmaker import __version__
from textmaker.data.squad import QADataset, QAExample
from textmaker.data.text_dataset import TextDataset
from textmaker.errors import TextmakerError
from textmaker.export import formats
from textmaker.export.exported import load_exported
from textmaker.export.quantization import QuantizationConfig
from textmaker.io import atomic_directory, write_json, write_lines
from textmaker.metrics import f1_score, squad_evaluate
from textmaker.tasks.classifier import TextClassifier


@dataclass(frozen=True)
class Tolerance:
    min_agreement: float = 0.99  # fraction of labels (QA: answers) that must match PyTorch's
    max_metric_drop: float = 1.0  # points of accuracy (QA: F1) the export may lose


def export(task, directory: str | Path, format: str = "onnx", quantization=None, representative_data=None,
           tolerance: Tolerance | None = None, max_samples: int = 1000, verbose: bool = True) -> dict:
    fmt = formats.check(format)
    q = QuantizationConfig.of(quantization)
    tolerance = tolerance or Tolerance()
    sample, labelled = _sample(task, representative_data, max_samples)
    rows, windows = _rows(task, sample)
    directory = Path(directory)
    if verbose:  # conversion and verification take from seconds to minutes
        print(f"exporting {fmt} {q.mode} to {directory}, then checking it against the trained model on "
              f"{len(sample)} samples ...", file=sys.stderr, flush=True)
    with atomic_directory(directory) as tmp:
        file = formats.FORMATS[fmt]
        outputs = {"logits": False} if isinstance(task, TextClassifier) else {"start_logits": True,
                                                                              "end_logits": True}
        formats.writer(fmt)(task.network, outputs, rows, task.preprocessor.pad_id, tmp / file, q,
                            task.preprocessor.seq_len)
        task.preprocessor.save(tmp)
        meta = {"textmaker_version": __version__, "task": task.task_name, "format": fmt, "file": file,
                "quantization": q.mode, "preprocessor": task.preprocessor.config(),
                "seq_len": task.preprocessor.seq_len, "lowercase": task.preprocessor.tokenizer.lowercase}
        if isinstance(task, TextClassifier):
            write_lines(tmp / "labels.txt", task.label_names)
            meta["label_names"] = task.label_names
        else:
            meta.update({k: task.config[k] for k in ("windows", "decoding", "version_2_with_negative")})
        write_json(tmp / "metadata.json", meta)
        exported = load_exported(tmp)
        check = _verify(task, exported, sample, labelled, rows, windows)
        check["data"] = "representative data" if representative_data is not None else "text from the vocabulary"
        meta.update(exported.runner.describe())
        meta.update({"size_bytes": (tmp / file).stat().st_size, "verification": check,
                     "tolerance": asdict(tolerance)})
        if "validation" in getattr(task, "metrics", {}):
            v = task.metrics["validation"]
            meta["trained_metrics"] = {k: v[k] for k in ("accuracy", "macro_f1", "exact_match", "f1") if k in v}
        write_json(tmp / "metadata.json", meta)
        line = _summary(fmt, q.mode, meta)
        failures = _failures(check, tolerance)
        if failures:
            raise TextmakerError(f"the {fmt} {q.mode} export does not match the trained model ({'; '.join(failures)}"
                                 f"): {line}; nothing was written. Try another quantization, or loosen the tolerance "
                                 f"if this is acceptable")
    if verbose:
        print(f"exported {directory}: {line}", file=sys.stderr)
    return meta


def _sample(task, data, max_samples: int):
    """-> (texts or QA examples, whether they carry labels)."""
    if isinstance(task, TextClassifier):
        if data is not None:
            data = data.with_label_names(task.label_names).sample(max_samples)
            return data, True
        return _vocab_texts(task, min(max_samples, 200)), False
    if data is not None:
        return data.sample(max_samples), any(e.answers for e in data.examples)
    texts = _vocab_texts(task, 40, words=(60, 300))
    examples = [QAExample(str(i), " ".join(t.split()[:8]) + "?", t, []) for i, t in enumerate(texts)]
    return QADataset(examples, task.version_2_with_negative, "vocabulary text"), False


def _vocab_texts(task, n: int, words=(3, 40)) -> list[str]:
    vocab = [w for w in task.preprocessor.tokenizer.vocab
             if w.isalpha() and not w.startswith("[") and not w.startswith("<")]
    rng = random.Random(0)
    return [" ".join(rng.choices(vocab, k=rng.randint(*words))) for _ in range(n)]


def _rows(task, sample) -> tuple[list[dict], list | None]:
    """-> (model input rows, the QA windows they came from, or None for a classifier)."""
    if isinstance(task, TextClassifier):
        texts = sample.texts if isinstance(sample, TextDataset) else sample
        return task.preprocessor(texts), None
    windows = task._make_windows(sample.examples)
    return [w.row() for w in windows], windows


def _verify(task, exported, sample, labelled: bool, rows: list[dict], windows: list | None) -> dict:
    if windows is None:
        ref, got = task._logits(rows), exported._logits(rows)
        out = {"samples": len(rows), "label_agreement": float((ref.argmax(-1) == got.argmax(-1)).mean()),
               "max_abs_logit_diff": float(np.abs(ref - got).max())}
        if labelled:
            y = np.array(sample.label_ids)
            out["trained_accuracy"] = float((ref.argmax(-1) == y).mean())
            out["exported_accuracy"] = float((got.argmax(-1) == y).mean())
            out["metric_drop"] = 100 * (out["trained_accuracy"] - out["exported_accuracy"])
        return out
    ref, got = task._logits(windows), exported._logits(windows)
    ref_pred = task._decode(sample.examples, windows, ref)[0]
    got_pred = exported._decode(sample.examples, windows, got)[0]
    out = {"samples": len(sample), "windows": len(windows),
           "label_agreement": float(np.mean([ref_pred[q] == got_pred[q] for q in ref_pred])),
           # Partial credit where a boundary moved ("the 1990s" for "1990s"): a flat-logit model's
           # spans flip under int8 while its F1 holds, and this tells the two apart.
           "answer_f1_with_trained": float(np.mean([f1_score(got_pred[q], ref_pred[q]) for q in ref_pred])),
           "max_abs_logit_diff": float(max(np.abs(a - b).max() for (a, _), (b, _) in zip(ref, got)))}
    if labelled:
        golds = {e.id: [a.text for a in e.answers] for e in sample.examples}
        r, g = squad_evaluate(golds, ref_pred), squad_evaluate(golds, got_pred)
        out.update({"trained_exact_match": r["exact_match"], "trained_f1": r["f1"],
                    "exported_exact_match": g["exact_match"], "exported_f1": g["f1"],
                    "metric_drop": r["f1"] - g["f1"]})
    return out


def _failures(check: dict, tol: Tolerance) -> list[str]:
    failures = []
    if check["label_agreement"] < tol.min_agreement:
        failures.append(f"agreement {100 * check['label_agreement']:.1f}% < {100 * tol.min_agreement:.1f}%")
    if check.get("metric_drop", 0.0) > tol.max_metric_drop:
        failures.append(f"lost {check['metric_drop']:.2f} points > {tol.max_metric_drop:.2f}")
    return failures


def _summary(fmt: str, mode: str, meta: dict) -> str:
    c = meta["verification"]
    parts = [f"{fmt} {mode}", f"{meta['size_bytes'] / 1e6:.1f} MB",
             f"agreement with PyTorch {100 * c['label_agreement']:.1f}% on {c['samples']} samples"]
    if "answer_f1_with_trained" in c:
        parts.append(f"answer F1 with PyTorch's {100 * c['answer_f1_with_trained']:.1f}")
    parts.append(f"max |logit diff| {c['max_abs_logit_diff']:.4f}")
    if "exported_accuracy" in c:
        parts.append(f"accuracy {100 * c['trained_accuracy']:.2f}% -> {100 * c['exported_accuracy']:.2f}%")
    if "exported_f1" in c:
        parts.append(f"F1 {c['trained_f1']:.2f} -> {c['exported_f1']:.2f}")
    return ", ".join(parts)
