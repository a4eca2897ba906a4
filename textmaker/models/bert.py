"""A BERT encoder in one file.

Module and parameter names follow Hugging Face's BertModel, so a Hugging
Face-format directory (config.json + model.safetensors, or a weights-only
pytorch_model.bin) loads without a renaming table, and the encoder we save
loads back into transformers. Attention runs through
torch.nn.functional.scaled_dot_product_attention, but for training on a CPU
(see BertSelfAttention). In a bf16 (fp16) network the residual stream stays in
fp32 (see stream_dtype).
"""

from __future__ import annotations

import logging

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from textmaker.errors import TextmakerError
from textmaker.io import read_json
from textmaker.models.config import DictConfig
from textmaker.models.dropout import Dropout, keep

log = logging.getLogger(__name__)


@dataclass
class BertConfig(DictConfig):
    model_type = "bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0

    def to_dict(self) -> dict:
        return {**super().to_dict(), "architectures": ["BertModel"]}

    def parameters(self) -> int:
        h, i = self.hidden_size, self.intermediate_size
        return (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + \
            self.num_hidden_layers * (4 * h * h + 2 * h * i)

    def check(self, source: str) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise TextmakerError(f"{source}: hidden_size {self.hidden_size} is not a multiple of "
                                 f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in _ACTIVATIONS:
            raise TextmakerError(f"{source}: hidden_act {self.hidden_act!r} is not one of {sorted(_ACTIVATIONS)}")


_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


def stream_dtype(weight: torch.Tensor) -> torch.dtype:
    """The residual stream's dtype in a network whose weights have weight's dtype: at least fp32. In a
    bf16 network the matrix multiplies take bf16 and the sums, LayerNorms and everything that flows
    between sublayers stay in fp32, as under autocast: a pure-bf16 stream rounded each sum to 8 bits
    of mantissa, forward and backward (MiniLM's SQuAD gradients were 3.5% off float64 that way;
    1.2% with the stream in fp32, 1.0% under autocast)."""
    return torch.promote_types(weight.dtype, torch.float32)


def cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x in dtype; nothing at all (not even a traced no-op) when it already is."""
    return x if x.dtype == dtype else x.to(dtype)


def layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """norm(x) computed and returned in x's dtype whatever the weights' (a bf16 network's LayerNorms
    see its fp32 stream)."""
    if norm.weight.dtype == x.dtype:
        return norm(x)
    return F.layer_norm(x, norm.normalized_shape, norm.weight.to(x.dtype), norm.bias.to(x.dtype), norm.eps)


class BertEmbeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        """-> the residual stream's first value, in stream_dtype."""
        dt = stream_dtype(self.word_embeddings.weight)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        # Tables that train are read from an fp32 copy, so that their gradients sum in fp32: the two
        # token-type rows each gather thousands of tokens' gradients (10% off float64 summed in bf16),
        # as do frequent words' rows. A kept word table (the default) is read as it is: 30,522 rows
        # are not cast for nothing.
        table = self.word_embeddings.weight
        if table.requires_grad and torch.is_grad_enabled():
            words = F.embedding(input_ids, cast(table, dt), self.word_embeddings.padding_idx)
        else:
            words = cast(self.word_embeddings(input_ids), dt)
        x = words + F.embedding(positions, cast(self.position_embeddings.weight, dt)) \
            + F.embedding(token_type_ids, cast(self.token_type_embeddings.weight, dt))
        return self.dropout(layer_norm(self.LayerNorm, x))


LONG_ROWS = 64  # tokens from which the attention's softmax runs in the network's dtype in training


class BertSelfAttention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.n_head = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout_p = c.attention_probs_dropout_prob

    def forward(self, queries, x, mask):
        """queries: the rows that attend ([B, Tq, C], x itself or its first rows); x: all rows; both
        in the weights' dtype."""
        B, T, C = x.shape
        heads = (B, -1, self.n_head, C // self.n_head)
        q = self.query(queries).view(heads).transpose(1, 2)
        k, v = (lin(x).view(heads).transpose(1, 2) for lin in (self.key, self.value))
        if self.training and self.dropout_p > 0 and x.device.type == "cpu":
            # SDPA's own attention dropout on a CPU draws with bernoulli_ (see models/dropout.py): the
            # same computation as its math path, with the cheap mask. The scores and probabilities
            # are the step's largest tensors (B x heads x T x T), so each pass over them counts: the
            # padding's -inf is added inside the multiply (baddbmm), the 1/sqrt(d) scale goes on the
            # queries and dropout's 1/(1-p) on the output (T/d times fewer elements), and the bool
            # mask selects instead of being cast and multiplied.
            d, Tq = C // self.n_head, q.shape[2]
            bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
            scores = torch.baddbmm(bias.expand(B, self.n_head, 1, T).reshape(-1, 1, T),
                                   (q * d ** -0.5).reshape(-1, Tq, d),
                                   k.reshape(-1, T, d).transpose(1, 2)).view(B, self.n_head, Tq, T)
            if T >= LONG_ROWS:
                # torch's CPU softmax accumulates a bf16 input in fp32 and rounds once: the fp32
                # softmax's probabilities (but for a rare last-bit rounding) without casting every
                # score to fp32 and back, forward and backward (SQuAD training ran 1.16x faster).
                probs = torch.softmax(scores, -1)
            else:  # on short rows the fp32 kernel is the faster one
                probs = torch.softmax(scores, -1, dtype=torch.float32).to(q.dtype)
            kept = torch.where(keep(probs.shape, self.dropout_p, probs.device), probs, 0.0)
            y = (kept @ v) * (1.0 / (1.0 - self.dropout_p))
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=self.dropout_p if self.training else 0.0)
        return y.transpose(1, 2).reshape(B, -1, C)


class BertDenseNorm(nn.Module):
    """dense -> dropout -> residual add -> LayerNorm (BERT's post-norm sublayer output). x is in the
    weights' dtype, the residual and the output in stream_dtype."""

    def __init__(self, c: BertConfig, d_in: int):
        super().__init__()
        self.dense = nn.Linear(d_in, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = Dropout(c.hidden_dropout_prob)

    def forward(self, x, residual):
        return layer_norm(self.LayerNorm, cast(self.dropout(self.dense(x)), residual.dtype) + residual)


class BertAttention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(c)  # "self" keeps Hugging Face's parameter names
        self.output = BertDenseNorm(c, c.hidden_size)

    def forward(self, x, mask, cls_only: bool = False):
        """x: the residual stream; the projections read it once cast to the weights' dtype."""
        rows = cast(x, self.self.query.weight.dtype)
        queries = x[:, :1] if cls_only else x
        return self.output(self.self(rows[:, :1] if cls_only else rows, rows, mask), queries)


class BertIntermediate(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        if c.hidden_act not in _ACTIVATIONS:
            raise TextmakerError(f"config.json: hidden_act {c.hidden_act!r} is not supported; "
                                 f"use one of {sorted(_ACTIVATIONS)}")
        self.act = _ACTIVATIONS[c.hidden_act]

    def forward(self, x):
        return self.act(self.dense(cast(x, self.dense.weight.dtype)))


class BertLayer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertDenseNorm(c, c.intermediate_size)

    def forward(self, x, mask, cls_only: bool = False):
        """cls_only: only the [CLS] row's output ([B, 1, H]); the other rows still serve as keys and values."""
        x = self.attention(x, mask, cls_only)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(c) for _ in range(c.num_hidden_layers))

    def forward(self, x, mask, cls_only: bool = False):
        for i, layer in enumerate(self.layer):
            x = layer(x, mask, cls_only and i == len(self.layer) - 1)
        return x


class BertPooler(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))

    def start_at_identity(self) -> None:
        """Dense weights = I, bias 0: the pooled output starts as tanh([CLS]). For a checkpoint whose
        pooler was never trained (a sentence encoder's), a random one would start fine-tuning from a
        random projection of [CLS]; this one is still a plain BERT pooler to every runtime."""
        with torch.no_grad():
            self.dense.weight.copy_(torch.eye(*self.dense.weight.shape))
            self.dense.bias.zero_()


class BertModel(nn.Module):
    """input ids -> (sequence output [B, T, H], pooled [CLS] output [B, H]); `pooled` for the second alone."""

    def __init__(self, config: BertConfig):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise TextmakerError(f"config.json: hidden_size {config.hidden_size} is not a multiple of "
                                 f"num_attention_heads {config.num_attention_heads}")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)
        self.apply(self._init_weights)

    @property
    def output_dim(self) -> int:
        return self.config.hidden_size

    def _init_weights(self, m: nn.Module):
        std = self.config.initializer_range
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=std)
            if m.padding_idx is not None:
                nn.init.zeros_(m.weight[m.padding_idx])

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        x = self._encode(input_ids, attention_mask, token_type_ids, cls_only=False)
        return x, self.pooler(x)

    def pooled(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """The pooled output alone ([B, H]), as forward gives it, for less: the pooler reads only the
        [CLS] row, so the last layer computes only that row (its query, attention output and
        feed-forward; every row still gives keys and values). In MiniLM that skips about a seventh
        of the encoder's arithmetic, in training and in exported classifiers alike."""
        return self.pooler(self._encode(input_ids, attention_mask, token_type_ids, cls_only=True))

    def freeze(self, layers: int, word_embeddings: bool = True) -> None:
        """Keep pre-trained weights as they are while the rest trains: the word-embedding table
        (word_embeddings), and with layers > 0 all the embeddings and the bottom `layers` encoder
        layers. Nothing below layer `layers` then needs a gradient, so backward stops there (a MiniLM
        step on SST-2 ran 1.18x faster with the embeddings and one layer kept)."""
        if not 0 <= layers <= len(self.encoder.layer):
            raise TextmakerError(f"frozen_layers (--frozen-layers) must be from 0 to {len(self.encoder.layer)} "
                                 f"(the encoder's layers), got {layers!r}")
        if layers:
            kept = [self.embeddings, *self.encoder.layer[:layers]]
        else:
            kept = [self.embeddings.word_embeddings] if word_embeddings else []
        for module in kept:
            module.requires_grad_(False)

    def _encode(self, input_ids, attention_mask, token_type_ids, cls_only: bool) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        # [B, 1, 1, T] boolean: every query may attend to every real (non-pad) key.
        mask = attention_mask.bool()[:, None, None, :]
        x = self.encoder(self.embeddings(input_ids, token_type_ids), mask, cls_only)
        return cast(x, self.embeddings.word_embeddings.weight.dtype)  # heads take the weights' dtype

    # ---- Hugging Face-format checkpoints --------------------------------

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "BertModel":
        directory = Path(directory)
        config_path = directory / "config.json"
        if not config_path.is_file():
            raise TextmakerError(f"{directory}: not a BERT model directory (no config.json)")
        try:
            raw = read_json(config_path)
        except ValueError as e:
            raise TextmakerError(f"{config_path}: not valid JSON ({e})") from None
        if not isinstance(raw, dict) or raw.get("model_type", "bert") != "bert":
            model_type = raw.get("model_type") if isinstance(raw, dict) else None
            raise TextmakerError(f"{config_path}: model_type is {model_type!r}; only BERT encoders load")
        config = BertConfig.from_dict(raw, str(config_path))
        with torch.device("meta"):  # no random initialisation of what the checkpoint replaces
            model = cls(config)
        model.to_empty(device="cpu")
        missing, unexpected = model.load_state_dict_report(load_weights(directory))
        for name in dict.fromkeys(k.rsplit(".", 1)[0] for k in missing):
            module = model.get_submodule(name)
            module.reset_parameters()
            model._init_weights(module)
        if missing:
            log.warning("%s: weights missing from the checkpoint (left at random init): %s", directory, missing)
        if unexpected:
            log.info("%s: checkpoint weights not used by the encoder: %s", directory, unexpected)
        model.missing_keys, model.unexpected_keys = missing, unexpected
        return model

    def load_state_dict_report(self, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        """Load matching weights; return (missing, unexpected) keys instead of failing."""
        # BertFor* checkpoints nest the encoder under "bert."; position_ids is a buffer, not a weight.
        state = {k.removeprefix("bert."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.endswith("position_ids")}
        own = self.state_dict()
        for k, v in state.items():
            if k in own and own[k].shape != v.shape:
                raise TextmakerError(f"checkpoint weight {k} has shape {tuple(v.shape)}, "
                                     f"the config says {tuple(own[k].shape)}")
        result = self.load_state_dict(state, strict=False)
        return sorted(result.missing_keys), sorted(result.unexpected_keys)


def read_safetensors(path: Path, expected: dict[str, torch.Size] | None = None) -> dict[str, torch.Tensor]:
    """A safetensors file, with one line naming it when it is damaged, or (with `expected`) when its
    header's shapes disagree with the model's: checked from the header, before the data is read."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        if expected is not None:
            with safe_open(str(path), framework="pt") as f:
                for name in f.keys():
                    shape = tuple(f.get_slice(name).get_shape())
                    if name in expected and tuple(expected[name]) != shape:
                        raise TextmakerError(f"{path}: {name} has shape {shape}, config.json says "
                                             f"{tuple(expected[name])}; the two files do not belong together")
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise TextmakerError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]}); the file is "
                             f"damaged: save or train the model again") from None


def load_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Weights from model.safetensors, else a weights-only pytorch_model.bin (never unpickles code)."""
    import pickle
    import warnings

    st = directory / "model.safetensors"
    if st.is_file():
        return read_safetensors(st)
    bin_path = directory / "pytorch_model.bin"
    if bin_path.is_file():
        try:
            with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's to act on
                warnings.simplefilter("ignore")
                return torch.load(bin_path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # weights_only refuses anything but tensors: nothing ran
            raise TextmakerError(f"{bin_path}: holds pickled code; textmaker loads only safetensors or "
                                 f"weights-only files (nothing in it was run)") from None
        except Exception as e:
            raise TextmakerError(f"{bin_path}: cannot be read as weights ({str(e).splitlines()[0]}); "
                                 f"convert it to safetensors") from None
    raise TextmakerError(f"{directory}: no model.safetensors or pytorch_model.bin")


