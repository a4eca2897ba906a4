"""The one training loop both tasks use.

A task gives the trainer its model, a loss function over a padded batch, and
(optionally) a validation function; the trainer owns everything else: AdamW
without decay on biases and LayerNorm, linear warmup then linear decay,
gradient clipping, length-grouped dynamic padding, seeded shuffling, per-epoch
validation, early stopping, the best weights, and checkpoints that resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from textmaker import distributed, precision
from textmaker.batching import Row, batch_order, pad_batch, padded_length
from textmaker.errors import TextmakerError
from textmaker.io import atomic_directory, read_json, write_json

log = logging.getLogger(__name__)

# A loss function takes the network and a batch; under bf16 the network's outputs are bf16, so it
# computes its loss from outputs cast to fp32 (.float()). Its statistics (sums over the batch) may
# be tensors on the device: the trainer reads them back only when it shows or saves them.
LossFn = Callable[[torch.nn.Module, dict], tuple[torch.Tensor, dict[str, "torch.Tensor | float"]]]
ValidateFn = Callable[[torch.nn.Module], dict[str, float]]


@dataclass
class TrainingConfig:
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    early_stopping_patience: int | None = None
    group_by_length: bool = True
    eval_batch_size: int = 64
    progress: bool = True
    # Checkpoints (with a checkpoint_dir) after every epoch, and within one every so many minutes
    # or steps, so that a kill loses minutes: a full SST-2 epoch on a CPU is many minutes.
    checkpoint_every_minutes: float | None = 10.0
    checkpoint_every_steps: int | None = None
    # Validation within epochs too, every so many optimizer steps; the best point (epoch end or not)
    # is the one kept. Each epoch's record lists its points under "evaluations".
    eval_every_steps: int | None = None
    precision: str = "auto"  # "auto" | "fp32" | "bf16" | "fp16" (see textmaker.precision)
    # Gradients of this many batches summed per optimizer step: the batch of a larger machine.
    gradient_accumulation_steps: int = 1
    max_steps: int | None = None  # stop after this many optimizer steps, if before the last epoch ends
    # Recorded for the history (the task sets requires_grad; see presets.trains_word_embeddings).
    train_word_embeddings: bool | None = None
    frozen_layers: int = 0  # recorded likewise (the task freezes them)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Settings that must match for a checkpoint to be resumed (the rest may change, e.g. progress).
# 2: the optimizer's state is per flat parameter group (precision.TrainingWeights), not per tensor.
CHECKPOINT_FORMAT = 2
RESUME_KEYS = ("epochs", "batch_size", "learning_rate", "weight_decay", "warmup_fraction", "max_grad_norm", "seed",
               "group_by_length", "gradient_accumulation_steps", "max_steps", "train_word_embeddings",
               "frozen_layers")


def fingerprint(rows: Sequence[Row], config: TrainingConfig) -> str:
    """What a checkpoint was trained on: the rows (ids and labels) and the settings that shape training."""
    h = hashlib.sha256()
    h.update(json.dumps({k: getattr(config, k) for k in RESUME_KEYS}, sort_keys=True).encode())
    for r in rows:
        h.update(json.dumps(r, sort_keys=True).encode())
    return h.hexdigest()[:16]


def lr_at(step: int, total: int, base: float, warmup_fraction: float) -> float:
    """Linear warmup over the first warmup_fraction of steps, then linear decay to 0."""
    warmup = int(warmup_fraction * total)
    if step < warmup:
        return base * (step + 1) / warmup
    return base * max(0.0, (total - step) / max(1, total - warmup))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only: biases, LayerNorm and other vectors are not decayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 and "LayerNorm" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def clip_gradients(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], max_norm: float,
                   fold: bool = True) -> None:
    """Scale the gradients down to a total norm of at most max_norm (clip_grad_norm_'s rule).

    With a fused AdamW (and fold) the scale is handed to the optimizer's kernel, which divides the
    gradients as it steps: on a CPU the step is memory-bound, and this saves a read and a write of
    every gradient (the grad_scale a GradScaler uses, through the same public attribute). The
    norm is the square root of each gradient's dot product with itself: on a CPU, BLAS's dot read
    MiniLM's 11M fp32 gradients in a quarter of vector_norm's time (1.2 against 4.8 ms).
    """
    if not (fold and optimizer.defaults.get("fused")):
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    flat = [p.grad.reshape(-1) for p in params]
    norm = torch.stack([torch.dot(g, g) for g in flat]).sum().sqrt()
    optimizer.grad_scale = torch.clamp(norm / max_norm, min=1.0)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
    """A padded NumPy batch as tensors on the device (to a GPU from pinned memory, without waiting)."""
    if device.type == "cuda":
        return {k: torch.from_numpy(v).pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
    return {k: torch.from_numpy(v).to(device) for k, v in batch.items()}


class Trainer:
    def __init__(self, model: torch.nn.Module, loss_fn: LossFn, pad_id: int, config: TrainingConfig,
                 validate: ValidateFn | None = None, monitor: str = "accuracy", higher_is_better: bool = True,
                 checkpoint_dir: str | Path | None = None, device: torch.device | None = None):
        self.model, self.loss_fn, self.pad_id, self.config = model, loss_fn, pad_id, config
        self.validate, self.monitor, self.higher_is_better = validate, monitor, higher_is_better
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.device = device or default_device()
        self.history: list[dict] = []

    def _score(self, record: dict) -> list[float]:
        """The monitored metric, ties broken by lower validation loss; larger is better."""
        value = record[f"val_{self.monitor}"]
        return [value if self.higher_is_better else -value, -record.get("val_loss", 0.0)]

    def _better(self, record: dict, state: dict) -> bool:
        return state["best_score"] is None or self._score(record) > state["best_score"]

    def fit(self, rows: Sequence[Row], resume: bool = False) -> list[dict]:
        c = self.config
        if not rows:
            raise TextmakerError("no training rows")
        rank, processes = distributed.world()
        if processes > 1:
            self.device = distributed.setup(self.device)
        self.precision = precision.resolve(c.precision, self.device)
        self.fingerprint = fingerprint(rows, c) if self.checkpoint_dir is not None else None
        model = self.model.to(self.device)
        saved = self._restore_model() if resume else None  # into the fp32 network, before any cast
        weights = precision.TrainingWeights(model, self.precision, param_groups(model, c.weight_decay))
        try:
            return self._fit(rows, model, weights, saved, rank, processes)
        finally:
            weights.restore()  # also on an interrupt: the caller's network is fp32 again

    def _fit(self, rows: Sequence[Row], model: torch.nn.Module, weights: "precision.TrainingWeights",
             saved: dict | None, rank: int, processes: int) -> list[dict]:
        c = self.config
        main = rank == 0
        net = torch.nn.parallel.DistributedDataParallel(model) if processes > 1 else model
        optimizer = precision.adamw(weights.groups, c.learning_rate, self.device)
        scaler = self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        lengths = [len(r["input_ids"]) for r in rows]
        longest = max(lengths)
        accum = c.gradient_accumulation_steps
        global_batch = c.batch_size * processes  # each process takes its share of every batch
        steps_per_epoch = math.ceil(math.ceil(len(rows) / global_batch) / accum)
        total_steps = min(steps_per_epoch * c.epochs, c.max_steps or steps_per_epoch * c.epochs)
        state = {"epoch": 0, "step": 0, "batch_in_epoch": 0, "sums": {"loss": 0.0}, "seen": 0, "seconds": 0.0,
                 "skipped_steps": 0, "best_score": None, "best_epoch": None, "best_step": None, "bad_epochs": 0,
                 "evaluations": []}
        best_weights = None
        if saved is not None:
            state, best_weights = self._restore_training(saved, optimizer)
            if state.get("grad_scaler"):  # fp16: the loss scale it had found, not the initial 2**16
                scaler.load_state_dict(state["grad_scaler"])
            if main:
                print(f"resuming from epoch {state['epoch'] + 1}, step {state['step']} of {total_steps} "
                      f"({self.checkpoint_dir})", file=sys.stderr, flush=True)
        last_checkpoint = (time.monotonic(), state["step"])
        for epoch in range(state["epoch"], c.epochs):
            # Seeds per epoch, not per run, so a resumed run draws what an uninterrupted one would
            # (mid-epoch, the checkpoint's RNG state takes over from the seed).
            if state["batch_in_epoch"] == 0:
                torch.manual_seed(c.seed * 1000 + epoch + 7919 * rank)  # each process its own dropout
            batches = batch_order(lengths, global_batch, random.Random(c.seed * 1000 + epoch), c.group_by_length)
            model.train()
            # The epoch's sums stay on the device in float64 (the sums of Python floats they were, to the
            # bit): reading a GPU's loss back every step would wait for the step to finish, and the
            # host could not queue the next one meanwhile.
            sums = {k: torch.tensor(v, dtype=torch.float64, device=self.device) for k, v in state["sums"].items()}
            # fp16: the steps skipped for inf/NaN gradients before this epoch (a resumed epoch's own so far
            # come from the checkpoint)
            skipped_before = _skipped(optimizer, state) - state["skipped_steps"] if scaler.is_enabled() else 0
            seen, t0, shown = state["seen"], time.perf_counter() - state["seconds"], 0.0
            bar = tqdm(total=len(rows), initial=seen, unit="ex", desc=f"epoch {epoch + 1}/{c.epochs}",
                       # None: tqdm stays quiet when stderr is not a terminal (a log file, CI)
                       disable=None if c.progress and main else True, dynamic_ncols=True, leave=True)
            for n in range(state["batch_in_epoch"], len(batches)):
                if state["step"] >= total_steps:  # max_steps reached
                    break
                b = batches[n]
                # This process's share; a share left empty by a short last batch still takes part
                # (DDP's all-reduce needs every process) with a row whose loss counts for nothing.
                mine = b[rank::processes]
                weight = 1.0 if mine else 0.0
                mine = mine or b[:1]
                first = n - n % accum  # the accumulation group this batch belongs to
                group = min(accum, len(batches) - first)
                width = padded_length(max(lengths[i] for i in mine), longest)
                batch = to_device(pad_batch([rows[i] for i in mine], self.pad_id, width), self.device)
                with precision.autocast(self.precision, self.device):
                    loss, stats = self.loss_fn(net, batch)
                scaler.scale(loss * weight / group).backward()
                weights.collect_grads(first=n == first)
                stepped = n + 1 == first + group
                if stepped:
                    for g in optimizer.param_groups:
                        g["lr"] = lr_at(state["step"], total_steps, c.learning_rate, c.warmup_fraction)
                    scaler.unscale_(optimizer)
                    # a loss scaler (fp16) sets grad_scale itself: clip the gradients apart then
                    clip_gradients(optimizer, weights.masters(), c.max_grad_norm, fold=not scaler.is_enabled())
                    scaler.step(optimizer)
                    scaler.update()  # no read-back: steps skipped are counted from the optimizer's
                    weights.publish()
                    state["step"] += 1
                sums["loss"] += loss.detach().double() * (len(mine) * weight)
                for k, v in stats.items():
                    v = v.detach().double() if torch.is_tensor(v) else v
                    sums[k] = sums[k] + v * weight if k in sums else \
                        torch.as_tensor(v * weight, dtype=torch.float64, device=self.device)
                seen += len(mine) * int(weight)
                bar.update(len(b))
                if not bar.disable and time.monotonic() - shown >= 1.0:  # a read-back once a second at most
                    bar.set_postfix(loss=f"{float(sums['loss']) / max(seen, 1):.4f}")
                    shown = time.monotonic()
                if stepped and n + 1 < len(batches) and self.validate is not None and c.eval_every_steps and \
                        state["step"] % c.eval_every_steps == 0:
                    point = {"step": state["step"], "epoch": round(epoch + (n + 1) / len(batches), 4)}
                    if main:
                        point.update({f"val_{k}": v for k, v in self.validate(model).items()})
                    point = distributed.from_main(point)
                    state["evaluations"].append(point)
                    if self._better(point, state):
                        state.update(best_score=self._score(point), best_epoch=epoch + 1, best_step=state["step"])
                        best_weights = weights.state_dict()
                    if c.progress and main:
                        tqdm.write(_epoch_line(point, "step"))
                if main and self.checkpoint_dir is not None and stepped and n + 1 < len(batches) and \
                        self._due(last_checkpoint, state):
                    state.update(epoch=epoch, batch_in_epoch=n + 1, sums=_floats(sums), seen=seen,
                                 seconds=time.perf_counter() - t0,
                                 skipped_steps=_skipped(optimizer, state) - skipped_before)
                    self._checkpoint(weights, optimizer, state, best_weights)
                    last_checkpoint = (time.monotonic(), state["step"])
            bar.close()
            seconds = time.perf_counter() - t0
            keys = sorted(sums)
            *totals, seen = distributed.sum_all([float(sums[k]) for k in keys] + [seen], self.device)
            sums = dict(zip(keys, totals))
            record = {"epoch": epoch + 1, "step": state["step"], **{f"train_{k}": v / seen for k, v in sums.items()},
                      "train_examples": int(seen), "train_seconds": round(seconds, 2),
                      "train_examples_per_second": round(seen / seconds, 1),
                      "precision": self.precision, "hardware": precision.hardware(self.device),
                      "processes": processes}
            if scaler.is_enabled():  # rank 0's; every process steps, skips and scales alike under DDP
                record.update(loss_scale=scaler.get_scale(), skipped_steps=_skipped(optimizer, state) - skipped_before)
            if self.validate is not None and main:
                record.update({f"val_{k}": v for k, v in self.validate(model).items()})
            record = distributed.from_main(record)
            improved_within = any(p.get("step") == state["best_step"] for p in state["evaluations"])
            if state["evaluations"]:
                record["evaluations"] = state["evaluations"]
            self.history.append(record)
            state.update(epoch=epoch + 1, batch_in_epoch=0, sums={"loss": 0.0}, seen=0, seconds=0.0, evaluations=[],
                         skipped_steps=0)
            stop = False
            if self.validate is not None:
                if self._better(record, state):
                    state.update(best_score=self._score(record), best_epoch=epoch + 1, best_step=state["step"],
                                 bad_epochs=0)
                    best_weights = weights.state_dict()
                elif improved_within:
                    state["bad_epochs"] = 0
                else:
                    state["bad_epochs"] += 1
                    stop = c.early_stopping_patience is not None and state["bad_epochs"] >= c.early_stopping_patience
            if c.progress and main:
                tqdm.write(_epoch_line(record))
            if self.checkpoint_dir is not None and main:
                self._checkpoint(weights, optimizer, state, best_weights)
                last_checkpoint = (time.monotonic(), state["step"])
            if stop:
                if c.progress and main:
                    tqdm.write(f"early stopping: no better val_{self.monitor} for {state['bad_epochs']} epochs")
                break
            if state["step"] >= total_steps:
                break
        weights.restore()
        if best_weights is not None:
            model.load_state_dict(best_weights)
            self.best_epoch, self.best_step = state["best_epoch"], state["best_step"]
        distributed.share_weights(model)
        return self.history

    def _due(self, last: tuple[float, int], state: dict) -> bool:
        c = self.config
        minutes = c.checkpoint_every_minutes is not None and time.monotonic() - last[0] >= 60 * c.checkpoint_every_minutes
        steps = c.checkpoint_every_steps is not None and state["step"] - last[1] >= c.checkpoint_every_steps
        return minutes or steps

    # ---- checkpoints: safetensors for tensors, JSON for the rest, never pickle ----

    def _checkpoint(self, weights: "precision.TrainingWeights", optimizer: torch.optim.Optimizer, state: dict,
                    best_weights: dict | None) -> None:
        with atomic_directory(self.checkpoint_dir) as d:
            save_file(_contiguous(weights.state_dict()), d / "model.safetensors")
            if best_weights is not None:
                save_file(_contiguous(best_weights), d / "best.safetensors")
            tensors, meta = _flatten_optimizer(optimizer.state_dict())
            save_file(tensors, d / "optimizer.safetensors")
            rng = {"cpu": torch.get_rng_state()}  # dropout's draws, mid-epoch
            if self.device.type == "cuda":  # a GPU's dropout draws from the GPU's own generator
                rng["cuda"] = torch.cuda.get_rng_state(self.device)
            save_file(rng, d / "rng.safetensors")
            write_json(d / "trainer_state.json", {**state, "grad_scaler": self.scaler.state_dict() or None,
                                                  "history": self.history, "optimizer": meta,
                                                  "config": self.config.to_dict(), "fingerprint": self.fingerprint,
                                                  "format": CHECKPOINT_FORMAT})
            (d / "RESUME.txt").write_text(
                f"An unfinished training run's checkpoint (epoch {state['epoch'] + (state['batch_in_epoch'] > 0)}, "
                f"step {state['step']}).\nTo continue it, run the same command again with --resume "
                f"(Python: resume=True); the data and settings must be the same.\n", encoding="utf-8")

    def _restore_model(self) -> dict:
        """The checkpoint's settings, checked against this run's, and its weights into the network."""
        d = self.checkpoint_dir
        if d is None or not (d / "trainer_state.json").is_file():
            raise TextmakerError(f"{d}: no checkpoint to resume from; train without --resume first")
        with _damaged_checkpoint(d):
            saved = read_json(d / "trainer_state.json")
            if saved.get("format", 1) != CHECKPOINT_FORMAT:
                raise TextmakerError(f"{d}: the checkpoint was written by another version of textmaker (checkpoint "
                                     f"format {saved.get('format', 1)}, this one reads {CHECKPOINT_FORMAT}); "
                                     f"train afresh without --resume")
            for key in RESUME_KEYS:
                if key in saved["config"] and saved["config"][key] != getattr(self.config, key):
                    raise TextmakerError(f"{d}: the checkpoint was trained with {key}={saved['config'][key]}, "
                                         f"not {getattr(self.config, key)}; resume with the same settings")
            if saved.get("fingerprint") not in (None, self.fingerprint):
                raise TextmakerError(f"{d}: the checkpoint was trained on other data; resume with the same "
                                     f"training data, or train afresh without --resume")
            self.model.load_state_dict(load_file(d / "model.safetensors", device=str(self.device)))
        return saved

    def _restore_training(self, saved: dict, optimizer: torch.optim.Optimizer) -> tuple[dict, dict | None]:
        """The optimizer, random state and progress of the checkpoint `_restore_model` read."""
        d = self.checkpoint_dir
        with _damaged_checkpoint(d):
            optimizer.load_state_dict(_unflatten_optimizer(load_file(d / "optimizer.safetensors"),
                                                           saved["optimizer"]))
            if (d / "rng.safetensors").is_file():
                rng = load_file(d / "rng.safetensors")
                torch.set_rng_state(rng["cpu"])
                if "cuda" in rng and self.device.type == "cuda":
                    torch.cuda.set_rng_state(rng["cuda"], self.device)
            best = load_file(d / "best.safetensors") if (d / "best.safetensors").is_file() else None
            state = {k: saved[k] for k in ("epoch", "step", "best_score", "best_epoch", "bad_epochs")}
            state.update(best_step=saved.get("best_step"), evaluations=saved.get("evaluations", []))
        self.history = saved["history"]
        state.update({k: saved.get(k, default) for k, default in
                      (("batch_in_epoch", 0), ("sums", {"loss": 0.0}), ("seen", 0), ("seconds", 0.0),
                       ("skipped_steps", 0), ("grad_scaler", None))})
        return state, best


@contextlib.contextmanager
def _damaged_checkpoint(d: Path):
    try:
        yield
    except (KeyError, ValueError, RuntimeError, OSError) as e:
        if isinstance(e, TextmakerError):
            raise
        raise TextmakerError(f"{d}: the checkpoint is damaged ({type(e).__name__}: {str(e).splitlines()[0]}); "
                             f"train afresh without --resume") from None


def _skipped(optimizer: torch.optim.Optimizer, state: dict) -> int:
    """Optimizer steps skipped so far by a loss scaler (fp16): a skipped step leaves the optimizer's
    own step count where it was (the fused AdamW takes the scaler's inf flag and undoes its count,
    and any other optimizer is not stepped), so counting needs no read-back at every step (on a
    GPU, a wait for the step to finish)."""
    taken = optimizer.state.get(optimizer.param_groups[0]["params"][0], {}).get("step", 0)
    return state["step"] - int(taken)


def _floats(sums: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in sums.items()}


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def _flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {f"{pid}.{k}": v.detach().contiguous().cpu()
               for pid, s in sd["state"].items() for k, v in s.items() if torch.is_tensor(v)}
    scalars = {str(pid): {k: v for k, v in s.items() if not torch.is_tensor(v)} for pid, s in sd["state"].items()}
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    for pid, s in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(s)
    return {"state": state, "param_groups": meta["param_groups"]}


def _epoch_line(record: dict, first: str = "epoch") -> str:
    parts = [f"{first} {record[first]}"]
    for k, v in record.items():
        if k.endswith("_per_second"):
            parts.append(f"{v:.1f} ex/s")
        elif k not in ("epoch", "step", "train_seconds") and isinstance(v, float):
            parts.append(f"{k} {v:.4f}")
    return "  ".join(parts)
