import pytest
import torch

from textmaker import precision
from textmaker.errors import TextmakerError
from tests.test_training import _loss, _model, _rows
from textmaker.training import Trainer, TrainingConfig

CPU = torch.device("cpu")


def test_auto_follows_the_cpu_features_found_at_run_time(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "amx_bf16"})
    assert precision.resolve("auto", CPU) == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert precision.resolve("auto", CPU) == "fp32"
    assert precision.resolve("bf16", CPU) == "bf16"  # asked for: slower without the units, but it works


@pytest.mark.parametrize("value,expected", [("fp16", "for GPUs"), ("half", "must be one of")])
def test_impossible_or_unknown_precisions_are_refused(value, expected):
    with pytest.raises(TextmakerError, match=expected):
        precision.resolve(value, CPU)


@pytest.mark.parametrize("mode", ["fp32", "bf16"])
def test_training_in_each_precision_learns_and_is_recorded(mode):
    model = _model()
    cfg = TrainingConfig(epochs=10, batch_size=8, learning_rate=1e-2, progress=False, precision=mode)
    history = Trainer(model, _loss, 0, cfg, None, device=CPU).fit(_rows())
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"] and history[-1]["train_accuracy"] > 0.9
    assert history[0]["precision"] == mode and history[0]["hardware"].startswith("CPU")
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    if mode == "bf16":  # ...and are the fp32 masters, not the bf16 copies the network computed with
        assert any(not torch.equal(p, p.bfloat16().float()) for p in model.parameters())


def test_the_optimizer_is_fused_where_the_device_has_it():
    opt = precision.adamw([{"params": [torch.nn.Parameter(torch.zeros(3))]}], 1e-3, CPU)
    assert opt.defaults.get("fused") or opt.defaults.get("foreach")
