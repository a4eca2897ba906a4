import torch

from textmaker.models.awe import AverageWordEmbedding, AweConfig


def test_mean_ignores_padding():
    torch.manual_seed(0)
    m = AverageWordEmbedding(AweConfig(vocab_size=20, wordvec_dim=4)).eval()
    _, a = m(torch.tensor([[1, 5, 6]]))
    _, b = m(torch.tensor([[1, 5, 6, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0]]))
    assert torch.allclose(a, b)
    assert m.embedding.weight[0].abs().sum() == 0  # the pad vector
