import pytest
import torch

from textmaker.models.dropout import Dropout, dropout, keep


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_mask_keeps_each_element_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    m = keep(torch.Size([1000, 301]), p, torch.device("cpu"))  # 301: not a multiple of 4
    assert m.dtype == torch.bool and m.shape == (1000, 301)
    kept = m.float()
    assert kept.mean().item() == pytest.approx(1 - p, abs=0.005)
    # every lane of the 64-bit draws keeps at the same rate
    lanes = kept.view(-1)[:300_000].view(-1, 4).mean(0)
    assert torch.allclose(lanes, torch.full((4,), 1 - p), atol=0.01)
    # and neighbouring elements are independent
    flat = kept.view(-1)
    assert (flat[1:] * flat[:-1]).mean().item() == pytest.approx((1 - p) ** 2, abs=0.005)


def test_the_expected_value_is_kept_and_the_gradient_follows_the_mask():
    torch.manual_seed(1)
    x = torch.randn(64, 384, requires_grad=True)
    y = dropout(x, 0.1, True)
    y.sum().backward()
    dropped = y == 0
    assert torch.equal(x.grad == 0, dropped)
    assert torch.allclose(y[~dropped], x[~dropped] / 0.9)
    assert dropout(x, 0.0, True) is x
    big = dropout(torch.ones(1_000_000), 0.1, True)
    assert big.mean().item() == pytest.approx(1.0, abs=0.01)


def test_seeded_like_torch_and_identity_in_eval_mode():
    d = Dropout(0.1)
    x = torch.randn(32, 16, 384)
    torch.manual_seed(3)
    a = d(x)
    state = torch.get_rng_state()
    b = d(x)
    torch.manual_seed(3)
    assert torch.equal(d(x), a)
    torch.set_rng_state(state)  # a checkpoint's RNG state replays the same masks
    assert torch.equal(d(x), b) and not torch.equal(a, b)
    d.eval()
    assert d(x) is x
    assert isinstance(d, torch.nn.Dropout) and d.state_dict() == {}
