"""Screen ideas for SST-2 accuracy on a subset, several seeds each, before a full-size run.

    python benchmarks/accuracy_screen.py VARIANT [--seeds 0 1 2] [--sentences 8000] [--epochs 2]

VARIANT: base (textmaker's defaults), meanpool (the mean of the last layer's real rows instead of
the pooler over [CLS]: how all-MiniLM-L6-v2 was trained, but not a model transformers'
BertForSequenceClassification can load), ls (label smoothing 0.1), attn0 (no attention dropout),
frozen0 (every encoder layer trained: `frozen_layers=0`, the one variant that is an option),
ungrouped (training batches drawn at random, not grouped by length: each batch mixes SST-2's
short phrases with whole sentences, as fine-tuning recipes without length grouping do),
pooler-eye (the pooler's dense layer started at the identity: all-MiniLM-L6-v2's pooler is an
untrained random matrix, its singular values those of Gaussian noise, shrinking [CLS] about 6x;
still a plain BERT pooler to every runtime; textmaker's default since session 21, so now the
same as base), pooler-checkpoint (the checkpoint's untrained pooler as it is: the defaults before
session 21).
The variants patch the network for this process only; nothing here is a textmaker option. The
training subset is fixed (seed 0); the seed moves the head's initialisation, the batch order and
the dropout. Accuracy on the whole SST-2 dev set (872 sentences).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, machine  # noqa: E402


def patch(variant: str) -> None:
    import torch.nn.functional as F

    from textmaker.models import bert, heads

    if variant == "meanpool":
        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            sequence, _ = self.backbone(input_ids, attention_mask, token_type_ids)
            m = attention_mask.to(sequence.dtype)[..., None]
            return self.classifier(self.dropout((sequence * m).sum(1) / m.sum(1)))
        heads.SequenceClassifier.forward = forward
    elif variant == "ls":
        cross_entropy = F.cross_entropy
        F.cross_entropy = lambda *a, **k: cross_entropy(*a, label_smoothing=0.1, **k)
    elif variant == "attn0":
        init = bert.BertSelfAttention.__init__

        def no_attention_dropout(self, c):
            init(self, c)
            self.dropout_p = 0.0
        bert.BertSelfAttention.__init__ = no_attention_dropout
    elif variant == "ungrouped":
        from textmaker import training

        order = training.batch_order
        training.batch_order = lambda lengths, size, rng=None, group=True: order(lengths, size, rng, False)
    elif variant == "pooler-checkpoint":
        from textmaker import presets

        presets.PRESETS["minilm_l6_en_uncased"].pop("pooler")
    elif variant not in ("base", "frozen0", "pooler-eye"):  # pooler-eye: the defaults' own pooler since session 21
        raise SystemExit(f"unknown variant {variant!r}: base, meanpool, ls, attn0, frozen0, ungrouped, pooler-eye "
                         f"or pooler-checkpoint")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variant")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sentences", type=int, default=8000, help="training sentences (0: all 67,349)")
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args()
    patch(a.variant)
    from textmaker import TextClassifier, TextDataset

    train = TextDataset.from_csv(SHARED / "sst2" / "train.tsv", text_column="sentence")
    if a.sentences:
        train = train.sample(a.sentences, 0)
    dev = TextDataset.from_csv(SHARED / "sst2" / "dev.tsv", text_column="sentence")
    print(machine(), flush=True)
    accuracies = []
    for seed in a.seeds:
        t0 = time.perf_counter()
        options = {"frozen_layers": 0} if a.variant == "frozen0" else {}
        clf = TextClassifier.create(train, epochs=a.epochs, seed=seed, progress=False, **options)
        accuracies.append(clf.evaluate(dev)["accuracy"])
        print(json.dumps({"variant": a.variant, "seed": seed, "sentences": len(train), "epochs": a.epochs,
                          "accuracy": accuracies[-1], "seconds": round(time.perf_counter() - t0)}), flush=True)
    print(f"{a.variant}: mean {100 * sum(accuracies) / len(accuracies):.2f}% over seeds {a.seeds}")


if __name__ == "__main__":
    main()
