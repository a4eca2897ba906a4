import json

import pytest
import torch
import torch.nn.functional as F

from textmaker.errors import TextmakerError
from textmaker.models.bert import BertConfig, BertModel
from textmaker.models.heads import SequenceClassifier
from textmaker.training import Trainer, TrainingConfig, lr_at, param_groups

# Every device this machine has. The CUDA cases run where a GPU is (CI has none: `pytest -k cuda` on a
# GPU machine), so a GPU's own paths (pinned non-blocking copies, its RNG in checkpoints, statistics
# summed on the device) are checked by the same tests as a CPU's.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]

TINY = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=32)


def _rows(n=64):
    # Label = whether token 7 occurs: learnable by a one-layer encoder.
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n):
        ids = torch.randint(8, 50, (int(torch.randint(3, 12, (1,), generator=g)),), generator=g).tolist()
        if i % 2:
            ids[len(ids) // 2] = 7
        rows.append({"input_ids": [2] + ids, "label": i % 2})
    return rows


def _loss(model, batch):
    logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).float()
    return F.cross_entropy(logits, batch["label"]), {"accuracy": (logits.argmax(-1) == batch["label"]).sum().item()}


def _model(seed=0):
    torch.manual_seed(seed)
    return SequenceClassifier(BertModel(TINY), 2, 0.1)


def _train(tmp=None, resume=False, epochs=4, **kw):
    model = _model()
    cfg = TrainingConfig(epochs=epochs, batch_size=8, learning_rate=1e-3, progress=False, **kw)
    val_rows = _rows(16)

    def validate(m):
        m.eval()
        from textmaker.batching import pad_batch
        b = {k: torch.from_numpy(v) for k, v in pad_batch(val_rows, 0).items()}
        with torch.no_grad():
            loss, stats = _loss(m, b)
        m.train()
        return {"loss": loss.item(), "accuracy": stats["accuracy"] / len(val_rows)}

    t = Trainer(model, _loss, 0, cfg, validate, checkpoint_dir=tmp, device=torch.device("cpu"))
    t.fit(_rows(), resume=resume)
    return model, t


def test_schedule_warms_up_then_decays_to_zero():
    lrs = [lr_at(s, 100, 1.0, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] == pytest.approx(1 / 90)


def test_no_weight_decay_on_biases_and_layernorm():
    decay, no_decay = param_groups(_model(), 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])


def test_same_seed_same_model_and_history():
    a, ta = _train()
    b, tb = _train()
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert [h["train_loss"] for h in ta.history] == [h["train_loss"] for h in tb.history]
    assert ta.history[-1]["train_loss"] < ta.history[0]["train_loss"]
    assert set(ta.history[0]) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                  "train_examples_per_second"}


@pytest.mark.parametrize("device", DEVICES)
def test_statistics_kept_on_the_device_sum_as_python_floats_did(device):
    """A loss function may return its statistics as tensors (no read-back per step, which on a GPU
    waits for the step): the history is the one float statistics give, to the bit."""
    rows, cfg = _rows(), TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-3, progress=False)
    histories = []
    for as_tensor in (False, True):
        def loss_fn(model, batch):
            loss, stats = _loss(model, batch)
            return loss, {k: torch.tensor(v) if as_tensor else v for k, v in stats.items()}

        histories.append(Trainer(_model(), loss_fn, 0, cfg, None, device=torch.device(device)).fit(rows))
    keys = ("train_loss", "train_accuracy", "train_examples")
    assert [[h[k] for k in keys] for h in histories[0]] == [[h[k] for k in keys] for h in histories[1]]
    assert all(type(h["train_accuracy"]) is float for h in histories[1])


def test_resume_matches_an_uninterrupted_run(tmp_path):
    rows, cpu = _rows(), torch.device("cpu")
    cfg = TrainingConfig(epochs=4, batch_size=8, learning_rate=1e-3, progress=False)
    uninterrupted = _model()
    Trainer(uninterrupted, _loss, 0, cfg, None, device=cpu).fit(rows)

    # A run killed right after its second epoch's checkpoint...
    killed = Trainer(_model(), _loss, 0, cfg, None, checkpoint_dir=tmp_path / "ck", device=cpu)
    real_checkpoint, calls = killed._checkpoint, []

    def checkpoint_then_die(*args):
        real_checkpoint(*args)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    killed._checkpoint = checkpoint_then_die
    with pytest.raises(KeyboardInterrupt):
        killed.fit(rows)
    # ...resumed into a model with other weights: everything must come from the checkpoint.
    resumed = _model(seed=123)
    t = Trainer(resumed, _loss, 0, cfg, None, checkpoint_dir=tmp_path / "ck", device=cpu)
    t.fit(rows, resume=True)
    assert [h["epoch"] for h in t.history] == [1, 2, 3, 4]
    for (k, v), w in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(v, w, atol=1e-6), k


@pytest.mark.parametrize("device", DEVICES)
def test_resume_mid_epoch_from_a_step_checkpoint_matches_an_uninterrupted_run(tmp_path, capsys, device):
    rows, dev = _rows(), torch.device(device)
    cfg = TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-3, progress=False, checkpoint_every_steps=3)
    uninterrupted = _model()
    Trainer(uninterrupted, _loss, 0, cfg, None, device=dev).fit(rows)

    killed = Trainer(_model(), _loss, 0, cfg, None, checkpoint_dir=tmp_path / "ck", device=dev)
    real_checkpoint = killed._checkpoint

    def checkpoint_then_die(weights, optimizer, state, best):
        real_checkpoint(weights, optimizer, state, best)
        if state["step"] == 6:  # mid first epoch: 8 batches an epoch
            raise KeyboardInterrupt

    killed._checkpoint = checkpoint_then_die
    with pytest.raises(KeyboardInterrupt):
        killed.fit(rows)
    assert "--resume" in (tmp_path / "ck" / "RESUME.txt").read_text()
    resumed = _model(seed=5)
    Trainer(resumed, _loss, 0, cfg, None, checkpoint_dir=tmp_path / "ck", device=dev).fit(rows, resume=True)
    assert "resuming from epoch 1, step 6 of 16" in capsys.readouterr().err
    for (k, v), w in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(v, w, atol=1e-6), k


def test_resume_with_other_training_data_is_refused(tmp_path):
    cfg = TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-3, progress=False)
    Trainer(_model(), _loss, 0, cfg, None, checkpoint_dir=tmp_path / "ck", device=torch.device("cpu")).fit(_rows())
    other = _rows()[:-1]
    with pytest.raises(TextmakerError, match="trained on other data"):
        Trainer(_model(), _loss, 0, cfg, None, checkpoint_dir=tmp_path / "ck",
                device=torch.device("cpu")).fit(other, resume=True)


def test_resume_without_checkpoint_or_with_other_settings(tmp_path):
    with pytest.raises(TextmakerError, match="no checkpoint to resume"):
        _train(tmp_path / "none", resume=True)
    _train(tmp_path / "ck", epochs=1)
    with pytest.raises(TextmakerError, match="epochs=1"):
        _train(tmp_path / "ck", resume=True, epochs=3)
    with pytest.raises(TextmakerError, match="frozen_layers=0, not 1; resume with the same settings"):
        _train(tmp_path / "ck", resume=True, epochs=1, frozen_layers=1)
    # a checkpoint from textmaker before the flat optimizer state (no "format") is named as such
    state_file = tmp_path / "ck" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["format"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(TextmakerError, match="another version of textmaker .*format 1.* without --resume") as e:
        _train(tmp_path / "ck", resume=True, epochs=1)
    assert "\n" not in str(e.value)


def test_early_stopping_restores_the_best_epoch():
    scores = iter([0.5, 0.8, 0.8, 0.7, 0.9])  # epoch 3 ties epoch 2 on accuracy, with a lower loss
    losses = iter([0.9, 0.6, 0.5, 0.7, 0.1])
    snapshots = []

    def validate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"accuracy": next(scores), "loss": next(losses)}

    model = _model()
    # fp32: under bf16, validation sees the bf16 copies and the best weights kept are the fp32 masters
    cfg = TrainingConfig(epochs=10, batch_size=8, learning_rate=1e-3, progress=False, early_stopping_patience=1,
                         precision="fp32")
    t = Trainer(model, _loss, 0, cfg, validate, device=torch.device("cpu"))
    t.fit(_rows())
    assert len(t.history) == 4 and t.best_epoch == 3
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[2][k]), k


def _model_without_dropout(seed=0):
    import dataclasses

    torch.manual_seed(seed)
    config = dataclasses.replace(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return SequenceClassifier(BertModel(config), 2, 0.0)


def test_gradient_accumulation_is_the_larger_batch():
    cpu = torch.device("cpu")
    common = dict(epochs=2, learning_rate=1e-3, progress=False, group_by_length=False, precision="fp32")
    big, accumulated = _model_without_dropout(), _model_without_dropout()
    Trainer(big, _loss, 0, TrainingConfig(batch_size=8, **common), None, device=cpu).fit(_rows())
    t = Trainer(accumulated, _loss, 0, TrainingConfig(batch_size=4, gradient_accumulation_steps=2, **common), None,
                device=cpu)
    t.fit(_rows())
    for (k, v), w in zip(big.state_dict().items(), accumulated.state_dict().values()):
        assert torch.allclose(v, w, atol=1e-5), k


def test_max_steps_stops_training_there():
    cfg = TrainingConfig(epochs=5, batch_size=8, learning_rate=1e-3, progress=False, max_steps=11)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = Trainer(model, _loss, 0, cfg, None, device=torch.device("cpu")).fit(_rows())
    assert len(history) == 2  # 8 steps an epoch: the second epoch stops after 3
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_evaluation_every_n_steps_keeps_the_best_point_within_an_epoch():
    # 8 steps an epoch, validated every 3 steps and at epoch ends: 3, 6, 8 | 9, 12, 15, 16.
    scores = iter([0.5, 0.6, 0.55, 0.9, 0.7, 0.6, 0.8])
    snapshots = []

    def validate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"accuracy": next(scores), "loss": 0.5}

    model = _model()
    cfg = TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-3, progress=False, eval_every_steps=3,
                         precision="fp32")
    t = Trainer(model, _loss, 0, cfg, validate, device=torch.device("cpu"))
    history = t.fit(_rows())
    assert [p["step"] for h in history for p in h.get("evaluations", [])] == [3, 6, 9, 12, 15]
    assert [h["step"] for h in history] == [8, 16]
    assert history[1]["evaluations"][0]["val_accuracy"] == 0.9 and 1 < history[1]["evaluations"][0]["epoch"] < 2
    assert (t.best_epoch, t.best_step) == (2, 9)
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[3][k]), k
