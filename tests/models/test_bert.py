import logging

import pytest
import torch
from safetensors.torch import load_file

from textmaker.errors import TextmakerError
from textmaker.io import write_json
from textmaker.models.bert import BertConfig, BertModel

TINY = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=64)
SENTENCES = ["a gripping, funny film that never lets go .",
             "The committee's report, published on 3 March 2021, ran to 400 pages.",
             "Héllo wörld"]


@pytest.mark.encoder
def test_parity_with_transformers_on_minilm(minilm_dir):
    transformers = pytest.importorskip("transformers")
    ours = BertModel.from_pretrained(minilm_dir).eval()
    assert ours.missing_keys == [] and ours.unexpected_keys == []
    ref = transformers.BertModel.from_pretrained(str(minilm_dir)).eval()
    batch = transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))(
        SENTENCES, SENTENCES[::-1], padding=True, return_tensors="pt")
    with torch.no_grad():
        seq, pooled = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        r = ref(**batch)
    real = batch["attention_mask"].bool()
    assert (seq - r.last_hidden_state)[real].abs().max().item() <= 1e-4
    assert (pooled - r.pooler_output).abs().max().item() <= 1e-4


def test_padding_does_not_change_real_tokens():
    torch.manual_seed(0)
    m = BertModel(TINY).eval()
    ids = torch.tensor([[2, 5, 7, 9]])
    padded = torch.tensor([[2, 5, 7, 9, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        a, pa = m(ids)
        b, pb = m(padded, mask)
    assert torch.allclose(a, b[:, :4], atol=1e-5) and torch.allclose(pa, pb, atol=1e-5)


def test_pooled_alone_equals_the_full_pass_and_so_do_its_gradients():
    """pooled() computes the last layer for the [CLS] row only: the same output and the same
    gradient for every weight as forward()'s pooled output, padding included."""
    torch.manual_seed(0)
    m = BertModel(TINY).eval()
    ids = torch.tensor([[2, 5, 7, 9, 11], [2, 8, 3, 0, 0]])
    mask = (ids != 0).long()
    full = m(ids, mask)[1]
    grads_full = torch.autograd.grad(full.square().sum(), list(m.parameters()), allow_unused=True)
    alone = m.pooled(ids, mask)
    grads_alone = torch.autograd.grad(alone.square().sum(), list(m.parameters()), allow_unused=True)
    assert torch.allclose(full, alone, atol=1e-6)
    for (name, _), a, b in zip(m.named_parameters(), grads_full, grads_alone):
        assert (a is None) == (b is None), name
        assert a is None or torch.allclose(a, b, atol=1e-6), name


def test_a_pooler_started_at_the_identity_passes_cls_through_tanh_and_still_trains():
    torch.manual_seed(0)
    m = BertModel(TINY).eval()
    m.pooler.start_at_identity()
    ids = torch.tensor([[2, 5, 7, 9, 11], [2, 8, 3, 0, 0]])
    seq, pooled = m(ids, (ids != 0).long())
    assert torch.allclose(pooled, torch.tanh(seq[:, 0]), atol=1e-6)
    pooled.sum().backward()  # a plain dense layer still: its weights learn from here
    assert m.pooler.dense.weight.grad.abs().sum() > 0


def test_long_rows_softmax_in_bf16_trains_as_the_fp32_softmax(monkeypatch):
    """In bf16 training, rows of LONG_ROWS tokens or more take the softmax in bf16: the same
    dropout draws and the same output up to rare one-bit roundings, gradients within bf16 rounding."""
    from textmaker.models import bert

    torch.manual_seed(0)
    m = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, max_position_embeddings=128)).to(torch.bfloat16).train()
    ids = torch.randint(3, 100, (3, bert.LONG_ROWS + 6))
    mask = torch.ones_like(ids)
    mask[1, 40:] = 0  # padding inside a long batch

    def run(long_rows: int):
        monkeypatch.setattr(bert, "LONG_ROWS", long_rows)
        torch.manual_seed(1)
        seq = m(ids, mask)[0]
        grads = torch.autograd.grad(seq.float().square().mean(), list(m.parameters()), allow_unused=True)
        return seq, grads

    seq_bf16, grads_bf16 = run(bert.LONG_ROWS)
    seq_fp32, grads_fp32 = run(10_000)  # every row "short": the fp32 softmax
    differ = seq_bf16 != seq_fp32
    assert differ.float().mean().item() < 0.01
    assert (seq_bf16.float() - seq_fp32.float()).abs().max().item() <= 2 ** -7 * seq_fp32.float().abs().max().item()
    compared = 0
    for (name, _), a, b in zip(m.named_parameters(), grads_bf16, grads_fp32):
        # the sequence output does not reach the pooler; a key bias adds one constant to each row of
        # scores, which the softmax cancels: its gradient is zero up to rounding
        if name.startswith("pooler") or name.endswith("key.bias"):
            continue
        compared += 1
        scale = b.float().abs().max().item() or 1.0
        assert (a.float() - b.float()).abs().max().item() <= 0.02 * scale, name
    assert compared == len(list(m.parameters())) - 4


def test_training_attention_on_a_cpu_is_dropout_attention_as_written():
    """The CPU training branch (scale on the queries, padding added inside baddbmm, the dropout mask
    selecting, 1/(1-p) on the output) against softmax(QK^T/sqrt(d) + padding) * keep/(1-p) @ V in
    float64, with the same dropout draws; on a long batch with padding and on [CLS]-only queries."""
    from textmaker.models import bert
    from textmaker.models.dropout import keep

    torch.manual_seed(0)
    c = BertConfig(hidden_size=32, num_attention_heads=4, attention_probs_dropout_prob=0.1)
    attn = bert.BertSelfAttention(c).train()
    x = torch.randn(3, 70, 32, requires_grad=True)
    mask = torch.ones(3, 1, 1, 70, dtype=torch.bool)
    mask[1, ..., 40:] = False
    for queries in (x, x[:, :1]):
        torch.manual_seed(1)
        y = attn(queries, x, mask)
        gx, = torch.autograd.grad(y.square().sum(), x)
        torch.manual_seed(1)
        kept = keep((3, 4, queries.shape[1], 70), 0.1, x.device)
        x64 = x.detach().double().requires_grad_()
        q64 = x64[:, :queries.shape[1]]
        heads = lambda lin, t: torch.nn.functional.linear(t, lin.weight.double(), lin.bias.double()).view(  # noqa: E731
            3, -1, 4, 8).transpose(1, 2)
        q, k, v = heads(attn.query, q64), heads(attn.key, x64), heads(attn.value, x64)
        probs = torch.softmax((q @ k.transpose(-2, -1) / 8 ** 0.5).masked_fill(~mask, float("-inf")), -1)
        ref = ((probs * kept / 0.9) @ v).transpose(1, 2).reshape(3, -1, 32)
        ref_gx, = torch.autograd.grad(ref.square().sum(), x64)
        assert kept.float().mean().item() == pytest.approx(0.9, abs=0.02)
        assert torch.allclose(y.double(), ref, atol=1e-5), (y.double() - ref).abs().max()
        assert torch.allclose(gx.double(), ref_gx, atol=1e-4), (gx.double() - ref_gx).abs().max()


def test_a_bf16_network_keeps_its_residual_stream_in_fp32_and_its_gradients_near_float64():
    """bf16 weights and matrix multiplies, but the sums, LayerNorms and what flows between layers in
    fp32, as autocast does: the weights' gradients come out about as close to float64 as autocast's.
    The heads still receive the weights' dtype."""
    import copy

    from textmaker.models import bert

    torch.manual_seed(0)
    c = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                   intermediate_size=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    net = BertModel(c).train()
    ids = torch.randint(1, 100, (32, 96))
    types = (torch.arange(96) >= 40).long().expand(32, 96)
    mask = torch.ones(32, 96, dtype=torch.long)
    mask[::3, 70:] = 0
    target = torch.randn(32, 96, 64)

    def grads(model, autocast=False):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            seq, pooled = model(ids, mask, types)
        ((seq.double() - target).square().mean() + pooled.double().square().mean()).backward()
        return {n: p.grad.double() for n, p in model.named_parameters()}, seq.dtype

    ref, _ = grads(copy.deepcopy(net).double())
    half = copy.deepcopy(net).to(torch.bfloat16)
    streams = []
    hook = half.encoder.layer[0].register_forward_hook(lambda m, i, out: streams.append(out.dtype))
    ours, out_dtype = grads(half)
    hook.remove()
    theirs, _ = grads(net, autocast=True)
    error = lambda g, names: (sum((g[n] - ref[n]).square().sum() for n in names)  # noqa: E731
                              / sum(ref[n].square().sum() for n in names)).sqrt().item()
    every = [n for n in ref if ref[n].norm() > 1e-12]  # the keys' biases get no gradient at all
    assert streams == [torch.float32] and out_dtype == torch.bfloat16
    # Here the pure-bf16 stream was 150x autocast's error over every weight and 35% off float64 on
    # the LayerNorms and token-type rows; the fp32 stream is 2.2x autocast's (its weights are bf16).
    assert error(ours, every) < 3 * error(theirs, every), (error(ours, every), error(theirs, every))
    sums = [n for n in ref if "LayerNorm" in n or "token_type" in n]
    assert error(ours, sums) < 0.01, error(ours, sums)


def test_reports_missing_and_unexpected_keys(tmp_path, caplog):
    torch.manual_seed(0)
    state = BertModel(TINY).state_dict()
    state = {f"bert.{k}": v for k, v in state.items() if not k.startswith("pooler.")}
    state["cls.predictions.bias"] = torch.zeros(100)
    torch.save(state, tmp_path / "pytorch_model.bin")
    write_json(tmp_path / "config.json", TINY.to_dict())
    with caplog.at_level(logging.INFO):
        m = BertModel.from_pretrained(tmp_path)
    assert m.missing_keys == ["pooler.dense.bias", "pooler.dense.weight"]
    assert m.unexpected_keys == ["cls.predictions.bias"]
    assert "pooler.dense.weight" in caplog.text
    assert torch.equal(m.embeddings.word_embeddings.weight, state["bert.embeddings.word_embeddings.weight"])
    # built without random initialisation: what the checkpoint lacks gets BERT's, not stale memory
    w = m.pooler.dense.weight
    assert torch.equal(m.pooler.dense.bias, torch.zeros_like(m.pooler.dense.bias))
    assert torch.isfinite(w).all() and abs(w.std().item() - TINY.initializer_range) < 0.01


def test_pickled_code_in_a_bin_file_is_refused(tmp_path):
    write_json(tmp_path / "config.json", TINY.to_dict())
    torch.save({"x": object()}, tmp_path / "pytorch_model.bin")  # not plain weights
    with pytest.raises(TextmakerError, match="holds pickled code; textmaker loads only safetensors or weights-only") as e:
        BertModel.from_pretrained(tmp_path)
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value)


def test_shape_mismatch_and_not_a_directory(tmp_path):
    write_json(tmp_path / "config.json", TINY.to_dict())
    torch.save({"embeddings.word_embeddings.weight": torch.zeros(5, 5)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(TextmakerError, match="has shape"):
        BertModel.from_pretrained(tmp_path)
    with pytest.raises(TextmakerError, match="no config.json"):
        BertModel.from_pretrained(tmp_path / "nothing")


@pytest.mark.encoder
def test_minilm_weights_are_the_ones_in_the_file(minilm_dir):
    m = BertModel.from_pretrained(minilm_dir)
    raw = load_file(minilm_dir / "model.safetensors")
    assert torch.equal(m.encoder.layer[5].output.dense.weight, raw["encoder.layer.5.output.dense.weight"])
    assert sum(p.numel() for p in m.parameters()) == pytest.approx(22.7e6, rel=0.01)
