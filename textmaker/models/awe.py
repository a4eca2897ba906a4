"""Average word embedding: the small, fast classification baseline.

MediaPipe's model (embedding -> average -> dense relu -> dropout -> dense), with
the average taken over real tokens only, so a batch padded to any length gives
the same answer as the text alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from textmaker.models.config import DictConfig


@dataclass
class AweConfig(DictConfig):
    model_type = "average_word_embedding"

    vocab_size: int = 10000
    wordvec_dim: int = 16
    pad_token_id: int = 0

    def parameters(self) -> int:
        return self.vocab_size * self.wordvec_dim + self.wordvec_dim * (self.wordvec_dim + 1)


class AverageWordEmbedding(nn.Module):
    """input ids -> (word vectors [B, T, D], pooled [B, D]); same contract as BertModel."""

    def __init__(self, config: AweConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.wordvec_dim, padding_idx=config.pad_token_id)
        self.dense = nn.Linear(config.wordvec_dim, config.wordvec_dim)

    @property
    def output_dim(self) -> int:
        return self.config.wordvec_dim

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        x = self.embedding(input_ids)
        m = attention_mask.unsqueeze(-1).to(x.dtype)
        mean = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        return x, torch.relu(self.dense(mean))

    def pooled(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        return self.forward(input_ids, attention_mask, token_type_ids)[1]
