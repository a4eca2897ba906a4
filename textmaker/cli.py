"""The `textmaker` command line.

Every user error prints one line (`textmaker: error: ...`) and exits non-zero,
without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from textmaker import __version__, distributed
from textmaker.errors import TextmakerError


def _delimiter(value: str) -> str:
    value = value.encode().decode("unicode_escape") if "\\" in value else value
    if value.lower() == "tab":
        value = "\t"
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"a delimiter is one character, got {value!r}")
    return value


def _seed_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated whole numbers, e.g. 0,1,2; got {value!r}") from None


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", default="text", help="text column (CSV/TSV) or field (JSON Lines); default: text")
    p.add_argument("--label-column", default="label", help="label column or field; default: label")
    p.add_argument("--delimiter", type=_delimiter, help="field delimiter; default: tab for .tsv, comma otherwise")
    p.add_argument("--encoding", default="utf-8", help="file encoding; default: utf-8")


def _load_data(path: str, args, label_names=None):
    """A classification data file or class folder, read with the column flags."""
    from textmaker.data import TextDataset

    return TextDataset.from_path(path, args.text_column, args.label_column, args.delimiter, args.encoding, label_names)


# What averaging seeds did for each task, for --seeds' help (benchmarks/RESULTS.md)
SEEDS_MEASURED = {
    "classify": "On SST-2 three seeds averaged scored 90.25-90.60%% (three trios) against 89.77%% for one run",
    "qa": "On SQuAD the plain average of three seeds scored below its best member (F1 64.01 against 66.51): "
          "give validation data",
}


def _add_training_flags(p: argparse.ArgumentParser, task: str) -> None:
    """The training loop's flags, the same for every task."""
    p.add_argument("--seed", type=int, help="seed of the head's initialisation, data order and dropout; default 0")
    p.add_argument("--seeds", type=_seed_list, metavar="S1,S2,...",
                   help="train one model per seed and write their weight average (one model, the size and speed "
                        "of one); with validation data, each member is kept only if it helps there. "
                        f"{SEEDS_MEASURED[task]}. The members stay in OUTPUT/members")
    p.add_argument("--gradient-accumulation", type=int, default=1, metavar="N",
                   help="sum the gradients of N batches per optimizer step (a larger batch in the same memory)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--eval-every", type=int, metavar="STEPS",
                   help="validate every STEPS optimizer steps too (not only at epoch ends); the best is kept")
    p.add_argument("--train-word-embeddings", action="store_true", default=None,
                   help="fine-tune a pre-trained encoder's word-embedding table too (default: kept)")
    p.add_argument("--frozen-layers", type=int, metavar="N",
                   help="keep the embeddings and the bottom N encoder layers as pre-trained (faster steps; "
                        "default: the preset's, 1 for MiniLM classifiers, else 0)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 on CPUs with AMX/AVX-512 BF16 and bf16 GPUs, fp16 on older GPUs, else fp32; "
                        "fp16 (with a loss scaler) on GPUs and CPUs with AVX512-FP16/AMX-FP16")


def _add_inference_flags(p: argparse.ArgumentParser) -> None:
    """How a trained model directory computes its answers (an export runs as it was exported)."""
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="default fp32, as trained and saved; auto: bf16 on CPUs with AMX/AVX-512 BF16 and bf16 "
                        "GPUs (faster, the same accuracy within noise), fp16 on older GPUs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textmaker", description="Train, evaluate and run small text models.")
    parser.add_argument("--version", action="version", version=f"textmaker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("presets", help="list the encoder presets")

    demo = sub.add_parser("demo", help="train, evaluate, save and predict on the bundled sample data")
    demo.add_argument("--output", default="runs/demo", help="where the demo's model goes; default: runs/demo")

    classify = sub.add_parser("classify", help="text classification").add_subparsers(dest="action", required=True)

    train = classify.add_parser("train", help="train a classifier on a CSV/TSV, JSON Lines file or class folders")
    train.add_argument("train_file")
    train.add_argument("--validation", help="validation data (same format as the training data)")
    train.add_argument("--validation-split", type=float,
                       help="hold out this fraction of the training data for validation (stratified)")
    _add_data_flags(train)
    train.add_argument("--model", default="minilm_l6_en_uncased",
                       help="a preset (see `textmaker presets`) or a BERT directory; default: minilm_l6_en_uncased")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--seq-len", type=int)
    train.add_argument("--dropout", type=float)
    train.add_argument("--freeze-encoder", action="store_true", help="train the head only")
    train.add_argument("--class-weights", choices=["balanced"], help="weight the loss by inverse class frequency")
    train.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                       help="stop after this many epochs without better validation accuracy")
    _add_training_flags(train, "classify")
    train.add_argument("--output", required=True, help="model directory to write (new, empty, or with --overwrite "
                                                       "a textmaker model)")
    train.add_argument("--overwrite", action="store_true", help="replace the textmaker model already in OUTPUT")
    train.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints")
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    ev = classify.add_parser("evaluate", help="evaluate a trained model on labelled data")
    ev.add_argument("model_dir")
    ev.add_argument("data_file")
    _add_data_flags(ev)
    ev.add_argument("--output-dir", help="write metrics.json and confusion_matrix.png here")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _add_inference_flags(ev)

    pr = classify.add_parser("predict", help="label texts with a trained model")
    pr.add_argument("model_dir")
    pr.add_argument("texts", nargs="+", metavar="TEXT")
    pr.add_argument("--top-k", type=int, default=1)
    pr.add_argument("--json", action="store_true", help="print JSON")
    _add_inference_flags(pr)

    ex = sub.add_parser("export", help="export a trained model to ONNX or TFLite, verified against it")
    ex.add_argument("model_dir")
    ex.add_argument("--format", choices=["onnx", "tflite", "web"], default="onnx",
                    help="onnx; tflite (MediaPipe Tasks, LiteRT); web: a static page running the ONNX export "
                         "with transformers.js in the browser")
    ex.add_argument("--transformers-js", metavar="NODE_MODULES",
                    help="--format web: the node_modules holding @huggingface/transformers (default: ./node_modules)")
    ex.add_argument("--quantization", choices=["none", "float16", "dynamic", "int8"],
                    help="default: none (web: dynamic, 4x smaller to download)")
    ex.add_argument("--output", required=True, help="export directory to write")
    ex.add_argument("--overwrite", action="store_true", help="replace the textmaker export already in OUTPUT")
    ex.add_argument("--representative-data", metavar="FILE",
                    help="labelled data (classification file or SQuAD JSON) to calibrate int8 and verify on; "
                         "default: the validation sample kept in MODEL_DIR at training time")
    _add_data_flags(ex)
    ex.add_argument("--min-agreement", type=float, default=0.97,
                    help="fail if the export changed more predictions than a change rate of 1 - this explains "
                         "(one-sided binomial test, p < 0.05; QA: answer F1 with the trained model's answers); "
                         "1 fails on any change; default 0.97")
    ex.add_argument("--max-drop", type=float, default=1.0,
                    help="fail if accuracy (QA: F1) drops by more points than this on labelled text; default 1.0")

    av = sub.add_parser("average", help="average the weights of models fine-tuned from one encoder (several seeds of "
                                        "one command) into one model of the same size; score it on held-out data "
                                        "(on SST-2 it beat each member, on SQuAD it did not)")
    av.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR", help="two or more trained model directories")
    av.add_argument("--output", required=True, help="model directory to write")
    av.add_argument("--overwrite", action="store_true", help="replace the textmaker model already in OUTPUT")
    av.add_argument("--check", metavar="FILE",
                    help="held-out labelled data (classification file or SQuAD JSON, not your test set): score "
                         "each member and the average on it, and write the average only if it scores at least "
                         "as well as the best member")
    av.add_argument("--greedy", action="store_true",
                    help="with --check: add the members best first, keeping each only if the average with it "
                         "scores no lower (a \"greedy soup\"); writes the best member alone if no average helps")
    _add_data_flags(av)

    qa = sub.add_parser("qa", help="extractive question answering (SQuAD)").add_subparsers(dest="action", required=True)
    qt = qa.add_parser("train", help="train a question answerer on SQuAD JSON")
    qt.add_argument("train_json")
    qt.add_argument("--validation", help="validation SQuAD JSON")
    qt.add_argument("--validation-split", type=float, help="hold out this fraction of the articles for validation")
    qt.add_argument("--version-2", action="store_true", help="SQuAD v2.0: unanswerable questions (auto-detected)")
    qt.add_argument("--skip-bad-answers", action="store_true",
                    help="drop questions whose answer_start does not match the context (counted)")
    qt.add_argument("--model", default="minilm_l6_en_uncased", help="a BERT preset or directory")
    qt.add_argument("--epochs", type=int)
    qt.add_argument("--batch-size", type=int)
    qt.add_argument("--learning-rate", type=float)
    qt.add_argument("--seq-len", type=int, help="tokens per window; default 384")
    qt.add_argument("--query-len", type=int, help="question tokens kept; default 64")
    qt.add_argument("--doc-stride", type=int, help="tokens between window starts; default 128")
    qt.add_argument("--early-stopping", type=int, metavar="PATIENCE")
    _add_training_flags(qt, "qa")
    qt.add_argument("--output", required=True)
    qt.add_argument("--overwrite", action="store_true", help="replace the textmaker model already in OUTPUT")
    qt.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints")
    qt.add_argument("--quiet", action="store_true")

    qe = qa.add_parser("evaluate", help="SQuAD EM/F1 of a trained model")
    qe.add_argument("model_dir")
    qe.add_argument("data_json")
    qe.add_argument("--output-dir", help="write predictions.json, nbest_predictions.json (and null_odds.json)")
    qe.add_argument("--json", action="store_true", help="print one JSON object")
    _add_inference_flags(qe)

    qp = qa.add_parser("predict", help="answer a question from a context")
    qp.add_argument("model_dir")
    qp.add_argument("--question", required=True)
    ctx = qp.add_mutually_exclusive_group(required=True)
    ctx.add_argument("--context")
    ctx.add_argument("--context-file")
    qp.add_argument("--n-best", type=int, default=1)
    qp.add_argument("--json", action="store_true")
    _add_inference_flags(qp)
    return parser


def _check_before_data(args, task: str) -> None:
    """Everything that can be wrong with the flags and the output, found before the data is read."""
    from textmaker import presets
    from textmaker.io import check_output
    from textmaker.options import check_seq_len, check_training, positive_int
    from textmaker.precision import resolve
    from textmaker.training import default_device

    check_training(args.epochs, args.batch_size, args.learning_rate, getattr(args, "dropout", None),
                   args.early_stopping, args.validation_split, args.seed)
    if args.validation and args.validation_split is not None:
        raise TextmakerError("give --validation or --validation-split, not both")
    if args.seeds is not None:
        from textmaker.tasks.averaging import check_seeds

        if args.seed is not None:
            raise TextmakerError("give --seed (one model) or --seeds (several, averaged), not both")
        check_seeds(args.seeds, "--seeds")
    preset = presets.resolve(args.model)
    if task == "question_answerer" and preset["kind"] != "bert":
        raise TextmakerError(f"--model {args.model}: question answering needs a BERT encoder")
    check_seq_len(args.seq_len, preset["kind"], presets.max_positions(preset))
    for option in ("query_len", "doc_stride"):
        positive_int(option, getattr(args, option, None))
    positive_int("gradient_accumulation_steps", args.gradient_accumulation)
    positive_int("max_steps", args.max_steps)
    positive_int("eval_every_steps", args.eval_every)
    resolve(args.precision, default_device())  # fp16 on a CPU without its arithmetic, say
    check_output(args.output, args.overwrite, args.resume)


def _train_and_validation(args, path: str, load):
    """The training data and its validation data (a file, a split of the training data, or none)."""
    train = load(path, args)
    val = load(args.validation, args) if args.validation else None
    if args.validation_split:
        train, val = train.split(1 - args.validation_split, seed=_seed(args))  # one split for every member
    _say(train.summary())
    return train, val


def _say(message: str) -> None:
    """A training command's report on stderr; under torchrun rank 0's alone (every rank would repeat it)."""
    if distributed.is_main():
        print(message, file=sys.stderr)


def _writer_lock(output: str):
    """The output's lock, held by the process that writes: under torchrun, rank 0."""
    import contextlib

    from textmaker.io import output_lock

    return output_lock(output) if distributed.is_main() else contextlib.nullcontext()


def cmd_classify_train(args) -> int:
    from textmaker.tasks.classifier import TextClassifier

    _check_before_data(args, "text_classifier")
    with _writer_lock(args.output):
        return _classify_train(args, TextClassifier)


def _seed(args) -> int:
    return args.seeds[0] if args.seeds else (args.seed or 0)


def _training_options(args) -> dict:
    """The create() arguments both tasks' `train` commands share, from their shared flags."""
    return dict(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                seq_len=args.seq_len, early_stopping_patience=args.early_stopping, resume=args.resume,
                progress=not args.quiet,
                precision=args.precision, gradient_accumulation_steps=args.gradient_accumulation,
                max_steps=args.max_steps, train_word_embeddings=args.train_word_embeddings,
                eval_every_steps=args.eval_every, frozen_layers=args.frozen_layers)


def _train(cls, train, val, args, **task_options):
    """One model (--seed), or several averaged (--seeds), trained and saved in OUTPUT."""
    output = Path(args.output)
    options = {**_training_options(args), **task_options}
    if not args.seeds:
        model = cls.create(train, val, args.model, seed=_seed(args), checkpoint_dir=output / "checkpoints", **options)
        model.save(output)
        return model
    model = cls.create_averaged(train, val, args.model, seeds=args.seeds, members_dir=output / "members", **options)
    # --overwrite replaces the whole model: members of seeds this run did not list go with it
    model.save(output, keep=tuple(f"members/seed{s}" for s in args.seeds) if args.overwrite else ("members",))
    _say(_check_table(model.config["averaged_check"]) if "averaged_check" in model.config else
         f"averaged {len(args.seeds)} seeds without a check (no validation data)")
    return model


def _check_table(check: dict) -> str:
    """An averaged_check record as lines: the metric and data, each member's score, the average's."""
    lines = [f"{check['metric']} on {check['data']}"]
    for m in check["members"]:
        kept = "" if "kept" not in m else ("  kept" if m["kept"] else "  left out")
        lines.append(f"  {m['score']:10.4f}  {m['model']}{kept}")
    return "\n".join([*lines, f"  {check['average']:10.4f}  average"])


def _classify_train(args, TextClassifier) -> int:
    train, val = _train_and_validation(args, args.train_file, _load_data)
    output = Path(args.output)
    clf = _train(TextClassifier, train, val, args, dropout=args.dropout, freeze_encoder=args.freeze_encoder,
                 class_weights=args.class_weights)
    if "validation" in clf.metrics:
        v = clf.metrics["validation"]
        _say(f"validation accuracy {v['accuracy']:.4f}  macro-F1 {v['macro_f1']:.4f}")
    _say(f"saved {output}")
    return 0


def cmd_classify_evaluate(args) -> int:
    from textmaker.metrics import format_classification_report

    clf = _load_model(args.model_dir, "text_classifier", args.precision)
    report = clf.evaluate(_load_data(args.data_file, args, clf.label_names), args.output_dir)
    print(json.dumps(report) if args.json else format_classification_report(report))
    return 0


def cmd_classify_predict(args) -> int:

    clf = _load_model(args.model_dir, "text_classifier", args.precision)
    results = clf.predict(args.texts, top_k=args.top_k)
    if args.json:
        print(json.dumps([{"text": t, "predictions": [p._asdict() for p in ps]} for t, ps in zip(args.texts, results)]))
    else:
        for text, preds in zip(args.texts, results):
            print(f"{'  '.join(f'{p.label} {p.score:.3f}' for p in preds)}\t{text}")
    return 0


def _load_squad(path: str, args=None):
    from textmaker.data import QADataset

    return QADataset.from_squad(path, True if getattr(args, "version_2", False) else None,
                                getattr(args, "skip_bad_answers", False))


def cmd_qa_train(args) -> int:
    from textmaker.tasks.question_answer import QuestionAnswerer

    _check_before_data(args, "question_answerer")
    with _writer_lock(args.output):
        return _qa_train(args, QuestionAnswerer)


def _qa_train(args, QuestionAnswerer) -> int:
    train, val = _train_and_validation(args, args.train_json, _load_squad)
    output = Path(args.output)
    qa = _train(QuestionAnswerer, train, val, args, query_len=args.query_len, doc_stride=args.doc_stride)
    if "validation" in qa.metrics:
        v = qa.metrics["validation"]
        _say(f"validation EM {v['exact_match']:.2f}  F1 {v['f1']:.2f}")
    _say(f"saved {output}")
    return 0


def cmd_qa_evaluate(args) -> int:

    qa = _load_model(args.model_dir, "question_answerer", args.precision)
    metrics = qa.evaluate(_load_squad(args.data_json), args.output_dir)
    if args.json:
        print(json.dumps(metrics))
    else:
        print("\n".join(f"{k:<20} {v:.2f}" if isinstance(v, float) else f"{k:<20} {v}" for k, v in metrics.items()))
    return 0


def cmd_qa_predict(args) -> int:
    from textmaker.data.readers import read_text

    qa = _load_model(args.model_dir, "question_answerer", args.precision)
    context = read_text(args.context_file) if args.context_file else args.context
    spans = qa.n_best(args.question, context, max(args.n_best, 1))
    if args.json:
        print(json.dumps([{"text": s.text, "score": s.score, "probability": s.probability, "start": s.start,
                           "end": s.end} for s in spans]))
    else:
        for s in spans:
            print(f"{s.probability:.3f}  [{s.start}:{s.end}]  {s.text}")
    return 0


def _load_model(directory: str, task: str, precision: str | None = None):
    """A trained model directory or an export directory, for evaluate/predict."""
    from textmaker.export.exported import is_export_dir, load_exported

    if is_export_dir(directory):
        model = load_exported(directory, task)
    elif task == "text_classifier":
        from textmaker.tasks.classifier import TextClassifier

        model = TextClassifier.load(directory)
    else:
        from textmaker.tasks.question_answer import QuestionAnswerer

        model = QuestionAnswerer.load(directory)
    return model if precision is None else model.at_precision(precision)


def cmd_export(args) -> int:
    from textmaker.export import Tolerance, export
    from textmaker.io import check_output
    from textmaker.tasks.base import read_model_config

    tolerance = Tolerance(args.min_agreement, args.max_drop)
    check_output(args.output, args.overwrite)
    task = read_model_config(args.model_dir)["task"]
    model = _load_model(args.model_dir, task)
    data = None
    if args.representative_data:
        data = _load_data(args.representative_data, args, model.label_names) if task == "text_classifier" \
            else _load_squad(args.representative_data)
    if args.format == "web":
        from textmaker.export.web import write_site

        meta = write_site(model, args.output, args.quantization or "dynamic", args.transformers_js, data, tolerance)
        print(f"open {Path(args.output) / 'index.html'} from a static host, e.g. "
              f"`python -m http.server --directory {args.output}`", file=sys.stderr)
    else:
        meta = export(model, args.output, args.format, args.quantization or "none", data, tolerance)
    print(json.dumps({k: meta[k] for k in ("format", "quantization", "size_bytes", "verification")}))
    return 0


def cmd_average(args) -> int:
    from textmaker.io import check_output
    from textmaker.tasks.base import Task, read_model_config

    if args.greedy and not args.check:
        raise TextmakerError("--greedy needs --check FILE: held-out data to score each member on")
    check_output(args.output, args.overwrite)
    if len(args.model_dirs) < 2:
        raise TextmakerError("average needs at least two model directories")
    tasks = [read_model_config(d)["task"] for d in args.model_dirs]
    for d, t in zip(args.model_dirs, tasks):
        if t != tasks[0]:
            raise TextmakerError(f"{d} holds a {t} model, {args.model_dirs[0]} a {tasks[0]}: average models of one task")
    models = [_load_model(d, tasks[0]) for d in args.model_dirs]
    check = None
    if args.check:
        check = _load_data(args.check, args, models[0].label_names) if tasks[0] == "text_classifier" \
            else _load_squad(args.check)
    with _writer_lock(args.output):
        averaged = Task.average(models, args.model_dirs, check, args.greedy)
        averaged.save(args.output)
    if check is not None:
        print(_check_table(averaged.config["averaged_check"]))
    used = len(averaged.config["averaged_from"])  # the greedy soup may keep fewer than it was given
    print(f"averaged {used} of {len(models)} models into {args.output}" if used < len(models) else
          f"averaged {len(models)} models into {args.output}", file=sys.stderr)
    return 0


def cmd_presets(args) -> int:
    from textmaker.presets import describe

    print(describe())
    return 0


def cmd_demo(args) -> int:
    from textmaker.demo import run_demo

    run_demo(args.output)
    return 0


COMMANDS = {
    ("classify", "train"): cmd_classify_train,
    ("classify", "evaluate"): cmd_classify_evaluate,
    ("classify", "predict"): cmd_classify_predict,
    ("qa", "train"): cmd_qa_train,
    ("qa", "evaluate"): cmd_qa_evaluate,
    ("qa", "predict"): cmd_qa_predict,
    ("export", None): cmd_export,
    ("average", None): cmd_average,
    ("presets", None): cmd_presets,
    ("demo", None): cmd_demo,
}


def _glue_seed_lists(argv: list[str]) -> list[str]:
    """`--seeds -1,2` as `--seeds=-1,2`: argparse reads a value that starts with "-" (other than a
    lone negative number) as a flag and says "expected one argument"; glued, the seeds check names
    what is wrong."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--seeds" and i + 1 < len(argv) and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            out.append(f"--seeds={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_glue_seed_lists(sys.argv[1:] if argv is None else argv))
    # Under torchrun every process reads the same files and would print the same warnings: rank 0 speaks.
    logging.basicConfig(level=logging.WARNING if distributed.is_main() else logging.ERROR,
                        format="textmaker: %(message)s")
    try:
        return COMMANDS[(args.command, getattr(args, "action", None))](args)
    except TextmakerError as e:
        print(f"textmaker: error: {e}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as e:
        print(f"textmaker: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("textmaker: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
