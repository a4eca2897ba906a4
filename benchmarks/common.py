"""Helpers shared by the benchmark scripts: subprocess isolation, peak memory, tables."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import torch

# ../shared/data beside the checkout; elsewhere (a lent GPU machine: benchmarks/device_prepare.py) named
# by TEXTMAKER_BENCHMARK_DATA.
SHARED = Path(os.environ.get("TEXTMAKER_BENCHMARK_DATA") or Path(__file__).resolve().parent.parent.parent / "shared"
              / "data")


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu() -> str:
    """The CPU's model and the matrix features that decide bf16/int8 speed (every figure records them)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", platform.machine()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    features = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    return f"{name} ({' '.join(features) or 'no AVX2'})"


@contextlib.contextmanager
def patched(obj, name: str, value):
    """obj.name = value inside the block, restored after it (also on an error)."""
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def machine() -> str:
    gpu = f"{torch.cuda.get_device_name()}, " if torch.cuda.is_available() else ""
    return f"{gpu}{cpu()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def import_outside_the_timing() -> None:
    """Both systems are timed without their imports. transformers' own import loads torch._dynamo;
    torch.optim loads it at the first optimizer a process makes, which for textmaker falls inside
    create(): about 2 s on a 2-core CPU, 6% of a 4,000-sentence run. Load it before the timing."""
    import torch._dynamo  # noqa: F401


def run_isolated(script: str, args: list[str]) -> dict:
    """Run `script --system ...` in a fresh interpreter; it prints one JSON line last."""
    out = subprocess.run([sys.executable, script, *args], stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def save_results(path: str, args: dict, machine_text: str, results: dict) -> None:
    """After each system, so a failure later in the run keeps what was measured."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"args": args, "machine": machine_text, "results": results}, indent=2))


def checkout(rev: str) -> Path:
    """A worktree of this repository at `rev`, to import an earlier textmaker from."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    tree = Path(f"/tmp/textmaker-{rev}")
    if not tree.is_dir():
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), rev], check=True,
                       stdout=subprocess.DEVNULL)
    return tree


def run_systems(script: str, args, rounds: int = 1) -> dict:
    """Run each of args.systems in its own process with the same settings; save after each.

    With rounds > 1 every system runs that many times, the order reversed every other round, so
    that a drift in the machine's speed (this project's CPUs drift by 10-25% within an hour) falls
    on every system alike: each system's value is then a list, one result per round.
    """
    forwarded = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                 if k not in ("system", "systems", "out", "rounds")]
    systems = args.systems.split(",")
    results: dict = {}
    for r in range(rounds):
        for system in (systems if r % 2 == 0 else systems[::-1]):
            label = f"{system} (round {r + 1} of {rounds})" if rounds > 1 else system
            print(f"running {label} ...", file=sys.stderr, flush=True)
            result = run_isolated(script, forwarded + [f"--system={system}"])
            print(json.dumps(result), file=sys.stderr, flush=True)
            if rounds > 1:
                results.setdefault(system, []).append({**result, "round": r + 1})
            else:
                results[system] = result
            save_results(args.out, vars(args), machine(), results)
    return results


def sst2_minilm_rows(sentences: int):
    """The MiniLM classifier as textmaker trains it (word embeddings kept) and `sentences` real
    SST-2 training sentences (seed 0), tokenized: (network, pad id, rows, labels)."""
    from textmaker import TextDataset, presets
    from textmaker.models import factory
    from textmaker.models.heads import SequenceClassifier

    data = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence").sample(sentences, 0)
    torch.manual_seed(0)
    backbone, pre = factory.from_preset(presets.resolve("minilm_l6_en_uncased"), 128)
    backbone.embeddings.word_embeddings.weight.requires_grad_(False)
    return SequenceClassifier(backbone, 2), pre.pad_id, pre(data.texts), torch.tensor(data.label_ids)


def padded_batch(rows: list, labels: torch.Tensor, ix: list[int], pad_id: int) -> tuple[dict, torch.Tensor]:
    """Rows `ix` padded to their longest, as torch tensors, with their labels."""
    from textmaker.batching import pad_batch
    from textmaker.training import to_device

    return to_device(pad_batch([rows[i] for i in ix], pad_id), torch.device("cpu")), labels[ix]


def sst2_minilm_batches(sentences: int) -> tuple[torch.nn.Module, list[tuple[dict, torch.Tensor]]]:
    """sst2_minilm_rows in length-grouped batches of 32, padded to their longest row:
    (network, [(batch tensors, labels)]), for the scripts that time a step on real batches."""
    import random

    from textmaker.batching import batch_order

    net, pad_id, rows, labels = sst2_minilm_rows(sentences)
    return net, [padded_batch(rows, labels, b, pad_id)
                 for b in batch_order([len(r["input_ids"]) for r in rows], 32, random.Random(0))]


def squad_minilm_batches(questions: int, batch: int = 16) -> tuple[torch.nn.Module, list[tuple[dict, torch.Tensor]]]:
    """The MiniLM span extractor as textmaker trains it (every layer, word embeddings kept) and the
    384-token windows of `questions` real SQuAD training questions (seed 0), in length-grouped
    batches padded to their longest row: (network, [(batch tensors, [start, end] positions)])."""
    import random

    from textmaker import presets
    from textmaker.batching import batch_order
    from textmaker.data import QADataset
    from textmaker.models import factory
    from textmaker.models.heads import SpanExtractor
    from textmaker.tasks.qa_windows import WindowConfig, make_windows

    train, _ = QADataset.from_squad(SHARED / "squad" / "squad-v1.1-dev-39articles.json").split(0.8, seed=0)
    torch.manual_seed(0)
    backbone, pre = factory.from_preset(presets.resolve("minilm_l6_en_uncased"), 384)
    backbone.embeddings.word_embeddings.weight.requires_grad_(False)
    rows = [w.row() for w in make_windows(pre.tokenizer, train.sample(questions, 0).examples, WindowConfig())]
    labels = torch.tensor([[r["start_position"], r["end_position"]] for r in rows])
    return SpanExtractor(backbone), [padded_batch(rows, labels, b, pre.pad_id)
                                     for b in batch_order([len(r["input_ids"]) for r in rows], batch, random.Random(0))]


def span_loss(outputs, positions: torch.Tensor) -> torch.Tensor:
    """QuestionAnswerer's loss, the mean of the start and end cross-entropies (without its masked_fill
    of the padding: the same work to within one element-wise pass)."""
    start, end = (x.float() for x in outputs)
    return (torch.nn.functional.cross_entropy(start, positions[:, 0])
            + torch.nn.functional.cross_entropy(end, positions[:, 1])) / 2


def class_loss(logits, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.float(), labels)


class TrainingStep:
    """One optimizer step as textmaker's Trainer takes it, on a bare network and a ready batch:
    forward, loss, backward, gradients into the fp32 masters, clip, fused AdamW, masters back into
    the network; in the precision "auto" picks here. For the scripts that time or profile a step."""

    def __init__(self, net: torch.nn.Module, loss=class_loss):
        from textmaker import precision
        from textmaker.training import param_groups

        cpu = torch.device("cpu")
        self.precision = precision.resolve("auto", cpu)
        self.weights = precision.TrainingWeights(net, self.precision, param_groups(net, 0.01))
        self.optimizer = precision.adamw(self.weights.groups, 1e-4, cpu)
        self.net = net.train()
        self.loss = loss

    def __call__(self, batch: dict, labels: torch.Tensor, clip) -> None:
        """clip: training.clip_gradients, or a variant of it with the same signature."""
        self.loss(self.net(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]), labels).backward()
        self.weights.collect_grads(first=True)
        clip(self.optimizer, self.weights.masters(), 1.0)
        self.optimizer.step()
        self.weights.publish()

    def close(self) -> None:
        self.weights.restore()


MODES = ["none", "float16", "dynamic", "int8"]


def each_export(task, name: str, formats: str, work: str, data, reuse: bool = False):
    """Export `task` in every format x quantization with the verification gate opened, so that
    every export is measured; yields (row name, exported model or None, metadata or error row).
    reuse: load an export already in `work` (from an earlier run of the same model) instead."""
    from textmaker.export import Tolerance, export, is_export_dir, load_exported

    for fmt in formats.split(","):
        for mode in MODES:
            label, out = f"{name} {fmt} {mode}", Path(work) / f"{name}-{fmt}-{mode}"
            if reuse and is_export_dir(out):
                yield label, load_exported(out), json.loads((out / "metadata.json").read_text())
                continue
            try:
                meta = export(task, out, fmt, mode, representative_data=data,
                              tolerance=Tolerance(min_agreement=1e-9, max_metric_drop=100.0))
            except Exception as e:  # a converter failure is a result too
                yield label, None, {"model": label, "error": str(e).splitlines()[0][:200]}
                continue
            yield label, load_exported(out), meta


def measure_exports(task, name: str, args, data, measure, reference_row: dict) -> tuple[dict, dict]:
    """Every export of `task` measured by measure(label, model, size_bytes) -> row.
    -> (label -> model to time, label -> row), torch's first."""
    models, rows = {f"{name} torch fp32": task}, {f"{name} torch fp32": reference_row}
    for label, exported, meta in each_export(task, name, args.formats, args.work, data, args.reuse):
        rows[label] = meta if exported is None else measure(label, exported, meta["size_bytes"])
        if exported is not None:
            models[label] = exported
        print(json.dumps(rows[label]), file=sys.stderr, flush=True)
    return models, rows


def print_table(header: list[str], results: list[dict], cells) -> None:
    """A markdown table, one row per result; a failed export shows its error."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        values = [f"failed: {r['error']}"] + [""] * (len(header) - 2) if "error" in r else cells(r)
        print("| " + " | ".join([r["model"], *values]) + " |")


def interleaved_latencies(calls: dict, inputs: list, block: int = 25) -> dict[str, tuple[float, float]]:
    """Milliseconds p50/p90 of each call over the inputs, the systems taking turns a block of
    inputs at a time, so that the machine's slow minutes fall on all of them alike. Blocks, not
    single inputs: ONNX Runtime's and LiteRT's worker threads spin a while after a call, which
    would slow the next system's call when they alternate on 2 cores."""
    import time

    import numpy as np

    times = {name: [] for name in calls}
    for start in range(0, len(inputs), block):
        for name, call in calls.items():
            call(inputs[start])  # warm-up: the previous system's threads settle
            for x in inputs[start:start + block]:
                t0 = time.perf_counter()
                call(x)
                times[name].append(time.perf_counter() - t0)
    return {name: (1000 * float(np.percentile(t, 50)), 1000 * float(np.percentile(t, 90))) for name, t in times.items()}


def alternating_steps(steps: dict, batches: list, warmup: int = 20) -> dict[str, float]:
    """Milliseconds per training step of each way, name -> step(batch, labels): every way takes
    every batch, the order reversed from one batch to the next, so a drift in the machine's speed
    falls on all alike. The first `warmup` batches are not timed (oneDNN creates its kernels for
    each new shape once)."""
    import time

    names = list(steps)
    for batch, y in batches[:warmup]:
        for name in names:
            steps[name](batch, y)
    seconds = dict.fromkeys(names, 0.0)
    for i, (batch, y) in enumerate(batches[warmup:]):
        for name in (names if i % 2 else names[::-1]):
            t0 = time.perf_counter()
            steps[name](batch, y)
            seconds[name] += time.perf_counter() - t0
    return {name: 1e3 * s / (len(batches) - warmup) for name, s in seconds.items()}
