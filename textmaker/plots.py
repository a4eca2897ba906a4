"""PNG plots: training curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: Sequence[dict], path: str | Path, metric: str = "accuracy") -> Path:
    """Loss and `metric` per epoch, training and validation (as in the TF BERT tutorial)."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for ax, key in zip(axes, ("loss", metric)):
        for split, style in (("train", "o-"), ("val", "s--")):
            values = [h.get(f"{split}_{key}") for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=f"{'training' if split == 'train' else 'validation'}")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    axes[0].set_title("Training and validation loss")
    axes[1].set_title(f"Training and validation {metric}")
    axes[1].set_xlabel("epoch")
    axes[1].set_xticks(epochs)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


MAX_PLOTTED_CLASSES = 50  # past this a picture is unreadable (and 1,000 classes made one 60,300 px square)


def plot_confusion_matrix(matrix: Sequence[Sequence[int]] | None, label_names: Sequence[str],
                          path: str | Path) -> Path | None:
    """The confusion matrix as a PNG, for up to MAX_PLOTTED_CLASSES classes (else None: metrics.json has it)."""
    k = len(label_names)
    if matrix is None or k > MAX_PLOTTED_CLASSES:
        return None
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * k + 3), max(3.5, 0.6 * k + 2.5)))
    im = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(k), label_names, rotation=45, ha="right")
    ax.set_yticks(range(k), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max(max(row) for row in matrix) or 1
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(matrix[i][j]), ha="center", va="center",
                        color="white" if matrix[i][j] > peak / 2 else "black")
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
