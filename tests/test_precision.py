import json

import pytest
import torch

from textmaker import precision
from textmaker.errors import TextmakerError
from tests.test_training import DEVICES, _loss, _model, _rows
from textmaker.training import Trainer, TrainingConfig

CPU = torch.device("cpu")


def test_auto_follows_the_cpu_features_found_at_run_time(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "amx_bf16"})
    assert precision.resolve("auto", CPU) == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert precision.resolve("auto", CPU) == "fp32"


def test_bf16_without_its_arithmetic_runs_when_asked_for_and_says_once_that_it_is_emulated(monkeypatch, caplog):
    monkeypatch.setattr(precision, "_bf16_warned", False)  # another test may have asked for it on this CPU
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    with caplog.at_level("WARNING", logger="textmaker.precision"):
        assert [precision.resolve("bf16", CPU) for _ in range(3)] == ["bf16"] * 3
    warned = [r.getMessage() for r in caplog.records if r.name == "textmaker.precision"]
    assert len(warned) == 1 and warned[0].startswith("precision bf16 (--precision): this CPU has no bf16 arithmetic")
    assert "auto picks fp32 here" in warned[0] and "\n" not in warned[0]
    with pytest.raises(TextmakerError, match=r"this CPU has no fp16 .*use fp32 or auto$"):  # not bf16: emulated too
        precision.resolve("fp16", CPU)
    caplog.clear()
    monkeypatch.setattr(precision, "_bf16_warned", False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    with caplog.at_level("WARNING", logger="textmaker.precision"):
        assert precision.resolve("bf16", CPU) == "bf16" and not caplog.records


def test_unknown_precisions_are_refused_naming_the_flag():
    with pytest.raises(TextmakerError, match=r"precision \(--precision\) must be one of auto, fp32, bf16, fp16"):
        precision.resolve("half", CPU)


@pytest.fixture
def fp16_cpu(monkeypatch):
    """A CPU with fp16 arithmetic (AVX512-FP16), where fp16 may be asked for: the same autocast and loss
    scaler a GPU runs. On this machine's CPU torch emulates the arithmetic (slowly: tiny models here)."""
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16", "avx512_fp16"})


def test_fp16_on_a_cpu_needs_its_arithmetic_and_auto_never_picks_it(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    with pytest.raises(TextmakerError, match=r"precision fp16 \(--precision\): this CPU has no fp16 .*use bf16"):
        precision.resolve("fp16", CPU)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "amx_bf16", "amx_fp16"})
    assert precision.resolve("fp16", CPU) == "fp16"
    assert precision.resolve("auto", CPU) == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_fp16"})
    assert precision.resolve("auto", CPU) == "fp32"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["fp32", "bf16", "fp16"])
def test_training_in_each_precision_learns_and_is_recorded(mode, device, fp16_cpu):
    model, device = _model(), torch.device(device)
    cfg = TrainingConfig(epochs=10, batch_size=8, learning_rate=1e-2, progress=False, precision=mode)
    history = Trainer(model, _loss, 0, cfg, None, device=device).fit(_rows())
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"] and history[-1]["train_accuracy"] > 0.9
    assert history[0]["precision"] == mode and history[0]["processes"] == 1
    assert history[0]["hardware"] == precision.hardware(device) and \
        history[0]["hardware"].startswith("CPU") == (device.type == "cpu")
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    if mode == "bf16":  # ...and are the fp32 masters, not the bf16 copies the network computed with
        assert any(not torch.equal(p, p.bfloat16().float()) for p in model.parameters())
    if mode == "fp16":  # a loss scaler from 2**16, halved at each step it skipped (too few steps to grow)
        skipped = [h["skipped_steps"] for h in history]
        assert sum(skipped) <= 3  # rare (late, when the scaled gradients of confident logits overflow)
        assert [h["loss_scale"] for h in history] == [2.0 ** (16 - sum(skipped[:e + 1])) for e in range(10)]
    else:
        assert "loss_scale" not in history[0]


def _overflowing_loss(model, batch):
    """_loss, but inf for a batch holding a marked row (token 5): its gradients overflow."""
    loss, stats = _loss(model, batch)
    return (loss * float("inf") if bool((batch["input_ids"] == 5).any()) else loss), stats


def _marked_rows(marked=(3,)):
    rows = _rows()
    for i in marked:
        rows[i] = {**rows[i], "input_ids": [2, 5] + rows[i]["input_ids"][2:]}
    return rows


@pytest.mark.parametrize("device", DEVICES)
def test_fp16_skips_a_step_whose_gradients_overflow_halves_the_scale_and_trains_on(device, fp16_cpu):
    model = _model()
    cfg = TrainingConfig(epochs=8, batch_size=8, learning_rate=1e-2, progress=False, precision="fp16")
    history = Trainer(model, _overflowing_loss, 0, cfg, None, device=torch.device(device)).fit(_marked_rows())
    # the marked row's batch, once an epoch, is skipped (a rare genuine overflow may add one), and
    # each skip halves the scale
    skipped = [h["skipped_steps"] for h in history]
    assert all(n >= 1 for n in skipped) and sum(skipped) <= 8 + 2
    assert [h["loss_scale"] for h in history] == [2.0 ** (16 - sum(skipped[:e + 1])) for e in range(8)]
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the inf never reached the weights
    clean = [h["train_loss"] for h in history]  # inf losses count in the epoch means...
    assert all(x == float("inf") for x in clean)
    model.eval()  # ...so judge learning on the rows themselves
    from textmaker.batching import pad_batch
    rows = [r for r in _marked_rows() if 5 not in r["input_ids"]]
    batch = {k: torch.from_numpy(v).to(device) for k, v in pad_batch(rows, 0).items()}
    with torch.no_grad():
        loss, stats = _loss(model, batch)
    assert stats["accuracy"] / len(rows) > 0.9


@pytest.mark.parametrize("device", DEVICES)
def test_fp16_resumes_mid_epoch_with_the_loss_scale_it_had_found(tmp_path, device, fp16_cpu):
    rows, dev = _marked_rows(), torch.device(device)
    cfg = TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-3, progress=False, precision="fp16",
                         checkpoint_every_steps=3)
    uninterrupted = _model()
    full = Trainer(uninterrupted, _overflowing_loss, 0, cfg, None, device=dev).fit(rows)

    killed = Trainer(_model(), _overflowing_loss, 0, cfg, None, checkpoint_dir=tmp_path / "ck", device=dev)
    real_checkpoint = killed._checkpoint

    def checkpoint_then_die(weights, optimizer, state, best):
        real_checkpoint(weights, optimizer, state, best)
        if state["step"] == 6:
            raise KeyboardInterrupt

    killed._checkpoint = checkpoint_then_die
    with pytest.raises(KeyboardInterrupt):
        killed.fit(rows)
    saved = json.loads((tmp_path / "ck" / "trainer_state.json").read_text())
    assert saved["grad_scaler"]["scale"] < 65536.0  # an overflow came before the kill
    resumed = _model(seed=5)
    history = Trainer(resumed, _overflowing_loss, 0, cfg, None, checkpoint_dir=tmp_path / "ck",
                      device=dev).fit(rows, resume=True)
    assert [(h["loss_scale"], h["skipped_steps"]) for h in history] == \
        [(h["loss_scale"], h["skipped_steps"]) for h in full]
    for (k, v), w in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(v, w, atol=1e-6), k


def test_the_optimizer_is_fused_where_the_device_has_it():
    opt = precision.adamw([{"params": [torch.nn.Parameter(torch.zeros(3))]}], 1e-3, CPU)
    assert opt.defaults.get("fused") or opt.defaults.get("foreach")


@pytest.mark.parametrize("mode", ["fp32", "bf16"])
def test_the_weights_live_in_one_flat_master_per_group_and_come_back_as_their_own_tensors(mode):
    from textmaker.training import param_groups
    model = _model().eval()  # no dropout: two backward passes give the same gradients
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.backbone.pooler.dense.weight.requires_grad_(False)  # frozen: not in any master
    weights = precision.TrainingWeights(model, mode, param_groups(model, 0.01))
    masters = weights.masters()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(masters) == 2 and sum(m.numel() for m in masters) == sum(p.numel() for p in trainable)
    assert all(m.dtype == torch.float32 and m.grad is not None for m in masters)
    assert model.backbone.pooler.dense.weight.dtype == (torch.bfloat16 if mode == "bf16" else torch.float32)
    # a backward pass in which the classifier takes no part: its gradient counts as zero
    ids = torch.tensor([[2, 9, 7, 11]])
    model.backbone(ids, torch.ones_like(ids, dtype=torch.bool), torch.zeros_like(ids))[0].float().sum().backward()
    weights.collect_grads(first=True)
    assert all(p.grad is None for p in model.parameters())
    head = model.classifier.weight.numel()
    grads = torch.cat([m.grad for m in masters])
    assert grads.abs().sum() > 0 and int((grads == 0).sum()) >= head
    once = [m.grad.clone() for m in masters]
    model.backbone(ids, torch.ones_like(ids, dtype=torch.bool), torch.zeros_like(ids))[0].float().sum().backward()
    weights.collect_grads(first=False)  # accumulation adds in fp32
    for m, g in zip(masters, once):
        assert torch.allclose(m.grad, 2 * g, atol=1e-6)
    with torch.no_grad():
        for m in masters:
            m.add_(0.5)
    weights.publish()
    if mode == "fp32":  # the network's parameters are views into the masters
        assert torch.equal(model.classifier.bias, before["classifier.bias"] + 0.5)
    else:  # the bf16 network holds the rounded masters
        assert torch.equal(model.classifier.bias, (before["classifier.bias"] + 0.5).bfloat16())
    saved = weights.state_dict()
    weights.restore()
    weights.restore()  # a second call (the trainer's finally) changes nothing
    state = model.state_dict()
    assert all(v.dtype == torch.float32 for v in state.values())
    assert torch.equal(state["classifier.bias"], before["classifier.bias"] + 0.5)
    assert torch.equal(state["backbone.pooler.dense.weight"], before["backbone.pooler.dense.weight"])
    assert all(torch.equal(saved[k], state[k]) for k in state)
    storages = [p.untyped_storage().data_ptr() for p in model.parameters()]
    assert len(set(storages)) == len(storages)  # safetensors refuses tensors that share memory


def test_clipping_folded_into_the_fused_step_is_clip_grad_norm():
    from textmaker.training import clip_gradients
    results = []
    for fold in (True, False):
        torch.manual_seed(0)
        p = [torch.nn.Parameter(torch.randn(100)), torch.nn.Parameter(torch.randn(7, 3))]
        opt = precision.adamw([{"params": p, "weight_decay": 0.0}], 1e-2, CPU)
        for step in range(3):
            for t in p:
                t.grad = torch.randn_like(t) * (10.0 if step != 1 else 0.01)  # clipped, not clipped, clipped
            clip_gradients(opt, p, 1.0, fold=fold)
            opt.step()
        results.append([t.detach().clone() for t in p])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-6)
