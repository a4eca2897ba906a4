import numpy as np
import pytest
import torch

from textmaker import precision
from textmaker.errors import TextmakerError
from textmaker.models.bert import BertConfig, BertModel
from textmaker.models.runner import TorchRunner
from tests.test_training import DEVICES


def _tiny():
    torch.manual_seed(0)
    return BertModel(BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128,
                                vocab_size=200)).eval()


def _batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 200, size=(3, 12))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


@pytest.mark.parametrize("device", DEVICES)
def test_a_bf16_runner_computes_with_a_bf16_copy_and_leaves_the_network_as_it_is(device):
    net, device = _tiny(), torch.device(device)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ref = TorchRunner(net, device)(_batch())
    runner = TorchRunner(net, device, precision="bf16")
    got = runner(_batch())
    assert runner.precision == "bf16"
    assert all(v.dtype == torch.float32 and v.device.type == device.type and torch.equal(v.cpu(), before[k])
               for k, v in net.state_dict().items())
    for r, g in zip(ref, got):
        assert g.dtype == np.float32 and g.shape == r.shape
        err = np.abs(g - r).max() / np.abs(r).max()
        assert 0 < err < 0.05, err  # computed in bf16 (not equal), to bf16's precision
    assert all(np.array_equal(a, b) for a, b in zip(TorchRunner(net, device, precision="fp32")(_batch()), ref))


def test_a_runner_takes_its_network_to_its_device():
    # "meta" stands for a second device on a machine with one: callers need not move the network first
    net = _tiny()
    runner = TorchRunner(net, torch.device("meta"))
    assert runner.network is net and all(p.device.type == "meta" for p in net.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_a_cuda_runner_takes_the_network_to_the_gpu_and_computes_what_the_cpu_does():
    on_cpu = TorchRunner(_tiny(), torch.device("cpu"))(_batch())
    net = _tiny()
    on_gpu = TorchRunner(net)(_batch())  # the default device where there is a GPU
    assert next(net.parameters()).is_cuda
    for c, g in zip(on_cpu, on_gpu):
        assert np.allclose(c, g, atol=1e-4, rtol=1e-4), np.abs(c - g).max()


@pytest.mark.parametrize("flags,expected", [({"avx512_bf16", "avx512f"}, "bf16"), ({"amx_bf16"}, "bf16"),
                                            ({"avx512f", "avx2"}, "fp32")])
def test_auto_is_bf16_exactly_where_training_picks_it(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    assert TorchRunner(_tiny(), torch.device("cpu"), "auto").precision == expected


def test_fp16_on_a_cpu_without_fp16_arithmetic_is_refused_naming_the_flag(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "amx_bf16"})
    with pytest.raises(TextmakerError, match=r"--precision.*no fp16 arithmetic.*use bf16"):
        TorchRunner(_tiny(), torch.device("cpu"), "fp16")


def test_an_fp16_runner_computes_in_fp16_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_fp16"})
    net = _tiny()
    ref = TorchRunner(net)(_batch())
    runner = TorchRunner(net, torch.device("cpu"), "fp16")
    assert next(runner.network.parameters()).dtype == torch.float32  # the network itself stays fp32
    for r, g in zip(ref, runner(_batch())):
        assert g.dtype == np.float32
        err = np.abs(g - r).max() / np.abs(r).max()
        assert 0 < err < 0.005, err  # computed in fp16: closer than bf16 (3 more mantissa bits), not equal
