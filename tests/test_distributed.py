"""torchrun with 2 CPU processes (gloo) trains as 1 process does with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.test_training import _loss, _model_without_dropout, _rows
from textmaker.precision import BF16_UNITS, cpu_flags
from textmaker.training import Trainer, TrainingConfig

REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(epochs=3, learning_rate=1e-3, progress=False)

WORKER = """
import atexit, json, pathlib, sys
import pytest
import torch
from safetensors.torch import save_file
from tests.test_training import _loss, _model_without_dropout, _rows
from textmaker import distributed
from textmaker.training import Trainer, TrainingConfig

# Registered before training, so it runs after textmaker's own exit handler: the process group must be
# gone by then, not left to the interpreter's teardown (where its threads can abort the process).
rank = distributed.world()[0]
atexit.register(lambda: pathlib.Path(sys.argv[1], f"left{rank}").write_text(str(torch.distributed.is_initialized())))
model = _model_without_dropout()
history = Trainer(model, _loss, 0, TrainingConfig(batch_size=4, **json.loads(sys.argv[2])), None,
                  device=torch.device("cpu")).fit(_rows())
if distributed.is_main():  # only rank 0 writes
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[1] + "/model.safetensors")
    open(sys.argv[1] + "/history.json", "w").write(json.dumps(history))
"""


# Stated tolerance: fp32, float sums in another order, nothing more (64 rows: every global batch splits
# evenly); bf16, the two halves' bf16 gradients are averaged, rounding where one batch's would not.
@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-5), ("bf16", 2e-3)])
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, precision, tolerance):
    settings = {**SETTINGS, "precision": precision}
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(tmp_path / "worker.py"), str(tmp_path), json.dumps(settings)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [(tmp_path / f"left{r}").read_text() for r in (0, 1)] == ["False", "False"]  # each left its group
    two = json.loads((tmp_path / "history.json").read_text())
    one_model = _model_without_dropout()
    one = Trainer(one_model, _loss, 0, TrainingConfig(batch_size=8, **settings), None,
                  device=torch.device("cpu")).fit(_rows())
    for a, b in zip(one, two):  # what differed, should this ever fail
        assert abs(a["train_loss"] - b["train_loss"]) <= tolerance, (a, b)
        assert a["train_accuracy"] == b["train_accuracy"] and a["precision"] == b["precision"] == precision, (a, b)
    theirs = load_file(tmp_path / "model.safetensors")
    for k, v in one_model.state_dict().items():
        assert theirs[k].dtype == torch.float32 and torch.allclose(v, theirs[k], atol=tolerance), \
            (k, (v - theirs[k]).abs().max().item())


def test_the_command_line_under_torchrun_writes_and_reports_once(tmp_path, toy_rows):
    from tests.conftest import write_tsv

    train, out = write_tsv(tmp_path / "train.tsv", toy_rows), tmp_path / "model"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "textmaker.cli", "classify", "train", str(train), "--text-column", "sentence",
                           "--model", "bert_tiny_en_uncased_random", "--epochs", "1", "--batch-size", "8",
                           "--validation-split", "0.25", "--output", str(out), "--quiet", "--precision", "bf16"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert lines.count(f"saved {out}") == 1, done.stderr[-3000:]
    # bf16 without its arithmetic warns: once for the run, not once a process
    emulated = not cpu_flags() & BF16_UNITS
    assert sum("this CPU has no bf16 arithmetic" in line for line in lines) == emulated, done.stderr[-3000:]
    assert sum(line.startswith("validation accuracy ") for line in lines) == 1
    assert sum("texts, 2 classes" in line for line in lines) == 1
    assert (out / "model.safetensors").is_file() and json.loads((out / "history.json").read_text())[-1]["epoch"] == 1


@pytest.mark.encoder
def test_seeds_under_torchrun_train_every_member_and_write_once(tmp_path, sample_train):
    from tests.conftest import write_tsv

    data = sample_train.sample(96, seed=3)
    train, out = write_tsv(tmp_path / "train.tsv", list(zip(data.texts, data.labels))), tmp_path / "model"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "textmaker.cli", "classify", "train", str(train), "--text-column", "sentence",
                           "--seeds", "0,1", "--epochs", "1", "--seq-len", "32", "--batch-size", "16",
                           "--precision", "fp32", "--validation-split", "0.25", "--output", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    for once in (f"saved {out}", "seed 0: member 1 of 2", "seed 1: member 2 of 2", "  average", "accuracy on "):
        assert sum(line.startswith(once) or line.endswith(once) for line in lines) == 1, (once, done.stderr[-3000:])
    config = json.loads((out / "config.json").read_text())
    assert len(config["averaged_check"]["members"]) == 2 and config["averaged_check"]["greedy"] is True
    for s in (0, 1):
        member = json.loads((out / "members" / f"seed{s}" / "config.json").read_text())
        assert member["training"]["seed"] == s
        history = json.loads((out / "members" / f"seed{s}" / "history.json").read_text())
        assert history[-1]["processes"] == 2  # the training history says how many processes shared each step
