"""Every TFLite classifier export run by MediaPipe Tasks itself, the runtime apps use.

    python benchmarks/mediapipe_exports.py --limit 4000 --epochs 1 [--model-dir DIR]

For the MiniLM classifier (fine-tuned on --limit SST-2 sentences, or --model-dir) and the AWE
baseline (all of SST-2), each quantization (none, float16, dynamic, int8) is exported with
`textmaker export`'s defaults (whether the default verification passes is recorded; the file
is kept either way to be measured), then MediaPipe's TextClassifier, with its own tokenizer
from the file's metadata, labels SST-2 dev: its top-label agreement with textmaker's PyTorch
model and with textmaker's own runner of the same file, the largest probability difference
from that runner, its dev accuracy, the file size, and batch-1 latency p50 (MediaPipe from
raw text; textmaker's LiteRT runner and PyTorch from token ids), the three taking turns.

Then the tokenizers on cased and accented real text: an AWE model trained on --imdb-train
cased IMDB reviews and exported, and MediaPipe run on --imdb-eval others: the share of
reviews where MediaPipe's probabilities equal textmaker's runner's (the same ids; MediaPipe's
RegexTokenizer neither lower-cases nor knows non-ASCII letters), and its label agreement.
For BERT, the same on the SST-2 dev and IMDB texts that hold non-ASCII letters.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import SHARED, MODES, interleaved_latencies, machine, save_results  # noqa: E402

from textmaker import TextClassifier, TextDataset  # noqa: E402
from textmaker.batching import pad_batch  # noqa: E402
from textmaker.errors import TextmakerError  # noqa: E402
from textmaker.export import Tolerance, export, load_exported  # noqa: E402
from textmaker.export.mediapipe_client import MediaPipeTextClassifier  # noqa: E402


def imdb_reviews(n: int, skip: int = 0) -> TextDataset:
    """n cased reviews (half pos, half neg) from the IMDB train archive, after `skip` of each class."""
    texts, labels, counts = [], [], {"pos": 0, "neg": 0}
    with tarfile.open(SHARED / "imdb" / "aclImdb-train.tar.gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) == 4 and parts[2] in counts and member.isfile():
                label = parts[2]
                counts[label] += 1
                if skip < counts[label] <= skip + n // 2:
                    texts.append(tar.extractfile(member).read().decode("utf-8").replace("<br />", " "))
                    labels.append(label)
                if all(c >= skip + n // 2 for c in counts.values()):
                    break
    return TextDataset.from_lists(texts, labels)


def export_default(clf, out: Path, mode: str) -> tuple[dict, str]:
    """Export with the default verification; where it refuses, export again with the gate open to measure."""
    try:
        return export(clf, out, "tflite", mode, verbose=False), "passes"
    except TextmakerError as e:
        verdict = "refused: " + str(e).split("(")[1].split(")")[0]
        return export(clf, out, "tflite", mode, tolerance=Tolerance(1e-9, 100.0), verbose=False), verdict


def same_ids_share(mp: np.ndarray, ours: np.ndarray) -> float:
    return float((np.abs(mp - ours).max(-1) < 1e-5).mean())


def measure_family(name: str, clf, dev: TextDataset, work: Path, latency_n: int) -> list[dict]:
    torch_probs = clf.predict_proba(dev.texts)
    y = np.array(dev.label_ids)
    rows = []
    for mode in MODES:
        out = work / f"{name}-tflite-{mode}"
        meta, verdict = export_default(clf, out, mode)
        ours = load_exported(out)
        mp = MediaPipeTextClassifier(out / "model.tflite")
        mp_probs = mp.predict_proba(dev.texts, len(clf.label_names))
        our_probs = ours.predict_proba(dev.texts, batch_size=1)
        texts = dev.texts[:latency_n]
        rows_in = clf.preprocessor(texts)
        fixed = [pad_batch([r], clf.preprocessor.pad_id, ours.runner.fixed_seq_len) for r in rows_in]
        real = [pad_batch([r], clf.preprocessor.pad_id) for r in rows_in]
        lat = interleaved_latencies({"mediapipe": lambda i: mp.classifier.classify(texts[i]),
                                     "litert": lambda i: ours.runner(fixed[i]),
                                     "torch": lambda i: clf.runner(real[i])}, list(range(len(texts))))
        mp.close()
        row = {"model": f"{name} tflite {mode}", "size_mb": meta["size_bytes"] / 1e6, "default_export": verdict,
               "verification": meta["verification"],
               "mp_accuracy": float((mp_probs.argmax(-1) == y).mean()),
               "torch_accuracy": float((torch_probs.argmax(-1) == y).mean()),
               "mp_vs_torch": float((mp_probs.argmax(-1) == torch_probs.argmax(-1)).mean()),
               "mp_vs_runner": float((mp_probs.argmax(-1) == our_probs.argmax(-1)).mean()),
               "mp_runner_max_prob_diff": float(np.abs(mp_probs - our_probs).max()),
               "mp_p50_ms": lat["mediapipe"][0], "litert_p50_ms": lat["litert"][0], "torch_p50_ms": lat["torch"][0]}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def tokenizer_check(name: str, clf, data: TextDataset, work: Path, only_non_ascii: bool) -> dict:
    texts = [t for t in data.texts if not only_non_ascii or any(ord(c) > 127 and c.isalpha() for c in t)]
    out = work / f"{name}-tflite-none"
    if not (out / "model.tflite").is_file():
        export(clf, out, "tflite", "none", tolerance=Tolerance(1e-9, 100.0), verbose=False)
    mp = MediaPipeTextClassifier(out / "model.tflite")
    mp_probs = mp.predict_proba(texts, len(clf.label_names))
    mp.close()
    ours = load_exported(out).predict_proba(texts, batch_size=1)
    torch_probs = clf.predict_proba(texts)
    return {"check": name, "texts": len(texts), "same_ids": same_ids_share(mp_probs, ours),
            "label_agreement_with_torch": float((mp_probs.argmax(-1) == torch_probs.argmax(-1)).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=4000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--model-dir", help="a trained MiniLM classifier to use instead of training one")
    p.add_argument("--models", default="minilm,awe")
    p.add_argument("--imdb-train", type=int, default=5000)
    p.add_argument("--imdb-eval", type=int, default=500)
    p.add_argument("--latency-sentences", type=int, default=100)
    p.add_argument("--work", default="benchmarks/out/mediapipe")
    p.add_argument("--out", default="benchmarks/out/mediapipe_exports.json")
    a = p.parse_args()
    work = Path(a.work)
    train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
    dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    imdb_eval = imdb_reviews(a.imdb_eval, skip=a.imdb_train // 2)
    results: dict = {"exports": [], "tokenizers": []}
    for which in a.models.split(","):
        t0 = time.perf_counter()
        if which == "minilm":
            if a.model_dir:
                clf = TextClassifier.load(a.model_dir)
            else:
                clf = TextClassifier.create(train.sample(a.limit, 0), epochs=a.epochs, seq_len=128, progress=False)
                clf.save(work / "minilm-model")
        else:
            clf = TextClassifier.create(train, model="average_word_embedding", progress=False)
        print(f"{which}: trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        results["exports"] += measure_family(which, clf, dev, work, a.latency_sentences)
        if which == "minilm":
            for label, data in (("BERT, SST-2 dev texts with non-ASCII letters", dev),
                                ("BERT, IMDB reviews with non-ASCII letters", imdb_eval)):
                results["tokenizers"].append(tokenizer_check("minilm", clf, data, work, True))
        save_results(a.out, vars(a), machine(), results)
    imdb = TextClassifier.create(imdb_reviews(a.imdb_train), model="average_word_embedding", progress=False)
    results["tokenizers"].append({**tokenizer_check("awe-imdb", imdb, imdb_eval, work, False),
                                  "what": f"AWE trained on {a.imdb_train} cased IMDB reviews"})
    save_results(a.out, vars(a), machine(), results)
    common.print_table(
        ["export", "size MB", "default export", "MediaPipe dev acc", "torch dev acc", "MediaPipe = torch",
         "MediaPipe = textmaker runner", "max prob diff", "batch-1 p50 ms MediaPipe / LiteRT / torch"],
        results["exports"],
        lambda r: [f"{r['size_mb']:.3g}", r["default_export"], f"{100 * r['mp_accuracy']:.2f}%",
                   f"{100 * r['torch_accuracy']:.2f}%", f"{100 * r['mp_vs_torch']:.1f}%",
                   f"{100 * r['mp_vs_runner']:.1f}%", f"{r['mp_runner_max_prob_diff']:.1e}",
                   f"{r['mp_p50_ms']:.3g} / {r['litert_p50_ms']:.3g} / {r['torch_p50_ms']:.3g}"])
    print()
    for r in results["tokenizers"]:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
