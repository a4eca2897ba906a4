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
