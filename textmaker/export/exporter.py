"""Export a trained task, then prove the exported file agrees with it, as an app would run it.

Every export runs the exported file on real labelled text (the user's representative
data, or else the verification sample kept in the model directory at training time)
one input at a time, as apps do (dynamic int8 scales activations per batch, so a
batch-64 check flatters it), and compares it with the PyTorch model: label (QA: answer)
agreement, the largest probability (QA: logit) difference, and the accuracy (QA: F1) change. A TFLite
classifier is run by MediaPipe Tasks itself, with MediaPipe's own tokenizer. The
figures go into metadata.json; past the tolerance the export fails with them and
writes nothing (quantized models that silently lose accuracy are the failure this
guards against).
"""

from __future__ import annotations

import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from textmaker import __version__
from textmaker.data.squad import QADataset, QAExample
from textmaker.errors import TextmakerError
from textmaker.export import formats, signatures
from textmaker.export.exported import load_exported
from textmaker.export.job import Job
from textmaker.export.quantization import QuantizationConfig
from textmaker.io import atomic_directory, check_output, output_lock, write_json, write_lines
from textmaker.metrics import binomial_tail, f1_score, log_softmax, max_over_golds, squad_evaluate
from textmaker.tasks.classifier import TextClassifier


SIGNIFICANCE = 0.05  # both gates refuse only what chance alone would produce less often than this


@dataclass(frozen=True)
class Tolerance:
    """When an export is refused.

    min_agreement: fraction of labels that must match PyTorch's; for QA, the exported answers' F1
    against the trained model's answers (a moved boundary, "the 1990s" for "1990s", is partial
    agreement). int8 flips a few near-50/50 texts either way: 97-99% is typical of a sound
    dynamic int8 export, a damaged one falls far lower. The export is refused when it changed
    more labels than a change rate of 1 - min_agreement explains (one-sided binomial test,
    p < 0.05), not when a small sample's share dips under it: on 120 texts a fixed 97% refused a
    sound export that changes 2% of labels about a fifth of the time (4 changes of 120). This
    test refuses it 0.3% of the time there, and never on 500 texts, where it still refuses a 6%
    change rate 93% of the time. min_agreement=1 refuses any change. For QA, the changed count
    is the summed answer disagreement (1 - F1 per question), rounded.
    max_metric_drop: points of accuracy (QA: F1) the export may lose on labelled text. A larger
    loss refuses the export when it is more than sampling noise: when the texts the export got
    wrong (and PyTorch right) outnumber those it got right (and PyTorch wrong) by more than
    chance would (one-sided sign test, p < 0.05). On 200 texts one flip is half a point.
    """

    min_agreement: float = 0.97
    max_metric_drop: float = 1.0

    def __post_init__(self):
        if not 0 < self.min_agreement <= 1:
            raise TextmakerError(f"min_agreement (--min-agreement) must be in (0, 1], got {self.min_agreement}")
        if not self.max_metric_drop >= 0:
            raise TextmakerError(f"max_metric_drop (--max-drop) must be >= 0 points, got {self.max_metric_drop}")

    def agreement_p_value(self, samples: int, changed: int) -> float:
        """How likely a change rate of 1 - min_agreement changes `changed` of `samples` labels or more."""
        return binomial_tail(samples, changed, 1 - self.min_agreement)

    def refuses_changes(self, samples: int, changed: int) -> bool:
        """Whether the agreement gate refuses an export that changed `changed` of `samples` labels."""
        return self.agreement_p_value(samples, changed) < SIGNIFICANCE


def export(task, directory: str | Path, format: str = "onnx", quantization=None, representative_data=None,
           tolerance: Tolerance | None = None, max_samples: int = 1000, verbose: bool = True) -> dict:
    """Write `task` as an ONNX or TFLite export directory, verified against it; returns its metadata.

    quantization: None/"none", "float16", "dynamic", "int8" or a QuantizationConfig.
    representative_data: labelled data to calibrate int8 and to verify on (default: the
    verification sample kept in the model directory).
    """
    if task.network is None:
        raise TextmakerError("this model runs an exported file; export from the trained model directory")
    task = task.at_precision("fp32")  # the reference: the trained weights as they are saved
    fmt = formats.check(format)
    q = QuantizationConfig.of(quantization)
    tolerance = tolerance or Tolerance()
    sig = signatures.signature(task.task_name, task.preprocessor, format)
    sample, origin = _sample(task, representative_data, max_samples)
    labelled = origin != "text made from the vocabulary"
    rows, windows = _rows(task, sample)
    directory = check_output(directory, overwrite=True, flag="export directory")
    if verbose:  # conversion and verification take from seconds to minutes
        print(f"exporting {format} {q.mode} to {directory}, then checking it against the trained model on "
              f"{len(sample)} examples of {origin}, one at a time ...", file=sys.stderr, flush=True)
    with output_lock(directory), atomic_directory(directory) as tmp:
        task.preprocessor.save(tmp)
        file = tmp / fmt.file(q.mode)
        file.parent.mkdir(parents=True, exist_ok=True)
        if fmt.hf_layout:  # transformers, Optimum and transformers.js read the model's config beside the file
            write_json(tmp / "config.json", task.config_json())
        meta = {"textmaker_version": __version__, "task": task.task_name, "format": format,
                "file": fmt.file(q.mode),
                "quantization": q.mode, "signature": signatures.to_metadata(sig),
                "preprocessor": task.preprocessor.config(), "seq_len": task.preprocessor.seq_len,
                "lowercase": task.preprocessor.tokenizer.lowercase}
        if isinstance(task, TextClassifier):
            write_lines(tmp / "labels.txt", task.label_names)
            meta["label_names"] = task.label_names
        else:
            meta.update({k: task.config[k] for k in ("windows", "decoding", "version_2_with_negative")})
        job = Job(task.task_name, task.network, sig, rows, task.preprocessor.pad_id, task.preprocessor.seq_len, q,
                  tmp)
        formats.write(format, job, file)
        write_json(tmp / "metadata.json", meta)
        exported = load_exported(tmp)
        if windows is None:
            check = _verify_classifier(task, exported, sample, labelled, file)
        else:
            check = _verify_qa(task, exported, sample, labelled, windows)
        check["data"] = origin
        check.update(_agreement_test(check, tolerance))
        meta.update(exported.runner.describe())
        meta.update({"size_bytes": file.stat().st_size, "verification": check,
                     "tolerance": asdict(tolerance)})
        if "validation" in getattr(task, "metrics", {}):
            v = task.metrics["validation"]
            meta["trained_metrics"] = {k: v[k] for k in ("accuracy", "macro_f1", "exact_match", "f1") if k in v}
        write_json(tmp / "metadata.json", meta)
        line = _summary(format, q.mode, meta)
        failures = _failures(check, tolerance)
        if failures:
            raise TextmakerError(f"the {format} {q.mode} export does not match the trained model "
                                 f"({'; '.join(failures)}): {line}; nothing was written. Try another quantization, "
                                 f"or loosen the tolerance (--min-agreement, --max-drop) if this is acceptable")
    if verbose:
        print(f"exported {directory}: {line}", file=sys.stderr)
    return meta


def _sample(task, data, max_samples: int):
    """-> (labelled examples of real text, or made-up text as the last resort; where they came from)."""
    origin = "the representative data"
    if data is None:
        data = task.verification_data()
        origin = task.config.get("verification_sample", {}).get("origin", "the model's verification sample")
        origin = f"the verification sample ({origin})"
    if data is not None:
        if isinstance(task, TextClassifier):
            data = data.with_label_names(task.label_names)
        return data.sample(max_samples), origin
    # A model saved by textmaker 0.1 keeps no sample: words of its vocabulary, checked for agreement only.
    if isinstance(task, TextClassifier):
        return _vocab_texts(task, min(max_samples, 200)), "text made from the vocabulary"
    texts = _vocab_texts(task, 40, words=(60, 300))
    examples = [QAExample(str(i), " ".join(t.split()[:8]) + "?", t, []) for i, t in enumerate(texts)]
    return QADataset(examples, task.version_2_with_negative, "vocabulary text"), "text made from the vocabulary"


def _vocab_texts(task, n: int, words=(3, 40)) -> list[str]:
    vocab = [w for w in task.preprocessor.tokenizer.vocab
             if w.isalpha() and not w.startswith("[") and not w.startswith("<")]
    rng = random.Random(0)
    return [" ".join(rng.choices(vocab, k=rng.randint(*words))) for _ in range(n)]


def _texts(sample) -> list[str]:
    return sample if isinstance(sample, list) else sample.texts


def _rows(task, sample) -> tuple[list[dict], list | None]:
    """-> (model input rows, the QA windows they came from, or None for a classifier)."""
    if isinstance(task, TextClassifier):
        return task.preprocessor(_texts(sample)), None
    windows = task.make_windows(sample.examples)
    return [w.row() for w in windows], windows


def _agreement(ref: np.ndarray, got: np.ndarray) -> dict:
    """Label agreement and the largest probability difference, from log-probabilities."""
    return {"label_agreement": float((ref.argmax(-1) == got.argmax(-1)).mean()),
            "max_abs_probability_diff": float(np.abs(np.exp(ref) - np.exp(got)).max()) if len(ref) else 0.0}


def _verify_classifier(task, exported, sample, labelled: bool, file: Path) -> dict:
    texts = _texts(sample)
    ref = log_softmax(task.logits(texts))  # log-probabilities: comparable with a probability output
    got = log_softmax(exported.logits(texts, batch_size=1))
    out = {"samples": len(texts), "batch_size": 1, "runtime": f"textmaker's {file.suffix[1:]} runner"}
    if file.suffix == ".tflite":
        # The app's runtime, with its own tokenizer, decides; textmaker's LiteRT runner is recorded beside it.
        from textmaker.export.mediapipe_client import MediaPipeTextClassifier

        out["textmaker_runner_label_agreement"] = _agreement(ref, got)["label_agreement"]
        client = MediaPipeTextClassifier(file)
        try:
            probs = client.predict_proba(texts, len(task.label_names))
        finally:
            client.close()
        got = np.log(np.maximum(probs, 1e-30))
        out["runtime"] = client.name
    out.update(_agreement(ref, got))
    if labelled:
        y = np.array(sample.label_ids)
        trained_right, exported_right = ref.argmax(-1) == y, got.argmax(-1) == y
        out["trained_accuracy"] = float(trained_right.mean())
        out["exported_accuracy"] = float(exported_right.mean())
        out["metric_drop"] = 100 * (out["trained_accuracy"] - out["exported_accuracy"])
        out.update(_loss_test(trained_right.astype(float), exported_right.astype(float)))
    return out


def _loss_test(trained: np.ndarray, exported: np.ndarray) -> dict:
    """How many examples the export made worse and better, and the one-sided sign test's p-value
    that it is worse by chance alone."""
    worse, better = int((exported < trained).sum()), int((exported > trained).sum())
    return {"examples_worse": worse, "examples_better": better,
            "loss_p_value": binomial_tail(worse + better, worse, 0.5)}


def _agreement_test(check: dict, tol: Tolerance) -> dict:
    """How many labels (QA: answers, by F1) the export changed, and the one-sided binomial test's
    p-value that a change rate of 1 - min_agreement would change that many or more."""
    n = check["samples"]
    changed = round(n * (1 - check["label_agreement"]))
    return {"labels_changed": changed, "agreement_p_value": tol.agreement_p_value(n, changed)}


def _verify_qa(task, exported, sample, labelled: bool, windows: list) -> dict:
    ref, got = task.window_logits(windows), exported.window_logits(windows, batch_size=1)
    ref_pred = task.decode(sample.examples, windows, ref)[0]
    got_pred = exported.decode(sample.examples, windows, got)[0]
    out = {"samples": len(sample), "windows": len(windows), "batch_size": 1,
           "runtime": f"textmaker's {exported.config['format']} runner",
           "exact_answer_agreement": float(np.mean([ref_pred[q] == got_pred[q] for q in ref_pred])),
           # Partial credit where a boundary moved ("the 1990s" for "1990s"): a flat-logit model's
           # spans flip under int8 while its F1 holds, and this tells the two apart.
           "label_agreement": float(np.mean([f1_score(got_pred[q], ref_pred[q]) for q in ref_pred])),
           "max_abs_logit_diff": float(max(np.abs(a - b).max() for (a, _), (b, _) in zip(ref, got)))}
    if labelled:
        golds = {e.id: [a.text for a in e.answers] for e in sample.examples}
        r, g = squad_evaluate(golds, ref_pred), squad_evaluate(golds, got_pred)
        out.update({"trained_exact_match": r["exact_match"], "trained_f1": r["f1"],
                    "exported_exact_match": g["exact_match"], "exported_f1": g["f1"],
                    "metric_drop": r["f1"] - g["f1"]})
        per_question = [(max_over_golds(f1_score, ref_pred[q], golds[q]), max_over_golds(f1_score, got_pred[q], golds[q]))
                        for q in ref_pred if golds[q]]
        out.update(_loss_test(*np.array(per_question, dtype=float).reshape(-1, 2).T))
    return out


def _failures(check: dict, tol: Tolerance) -> list[str]:
    failures = []
    what = "answer F1 with PyTorch's answers" if "windows" in check else "agreement"
    if tol.refuses_changes(check["samples"], check["labels_changed"]):
        failures.append(f"{what} {100 * check['label_agreement']:.1f}%: {check['labels_changed']} of "
                        f"{check['samples']} changed, more than a {100 * (1 - tol.min_agreement):.1f}% change rate "
                        f"explains (p = {check['agreement_p_value']:.2g})")
    if check.get("metric_drop", 0.0) > tol.max_metric_drop and check["loss_p_value"] < SIGNIFICANCE:
        failures.append(f"lost {check['metric_drop']:.2f} points > {tol.max_metric_drop:.2f}: "
                        f"{check['examples_worse']} examples made wrong, {check['examples_better']} made right")
    return failures


def _summary(fmt: str, mode: str, meta: dict) -> str:
    c = meta["verification"]
    parts = [f"{fmt} {mode}", f"{meta['size_bytes'] / 1e6:.1f} MB", f"run by {c['runtime']}"]
    if "windows" in c:
        parts.append(f"answers equal to PyTorch's {100 * c['exact_answer_agreement']:.1f}% on {c['samples']} "
                     f"questions, answer F1 with PyTorch's {100 * c['label_agreement']:.1f}")
    else:
        parts.append(f"agreement with PyTorch {100 * c['label_agreement']:.1f}% on {c['samples']} texts")
    if "max_abs_logit_diff" in c:
        parts.append(f"max |logit diff| {c['max_abs_logit_diff']:.4f}")
    else:
        parts.append(f"max |probability diff| {c['max_abs_probability_diff']:.4f}")
    if "exported_accuracy" in c:
        parts.append(f"accuracy {100 * c['trained_accuracy']:.2f}% -> {100 * c['exported_accuracy']:.2f}%")
    if "exported_f1" in c:
        parts.append(f"F1 {c['trained_f1']:.2f} -> {c['exported_f1']:.2f}")
    return ", ".join(parts)
