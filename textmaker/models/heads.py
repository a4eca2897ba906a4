"""Task heads on any backbone that returns (sequence output, pooled output), and the pooled output
alone from `pooled`."""

from __future__ import annotations

import torch
from torch import nn

from textmaker.models.dropout import Dropout


class SequenceClassifier(nn.Module):
    """pooled output -> dropout -> dense: logits over the classes."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.1, initializer_range: float = 0.02):
        super().__init__()
        self.backbone = backbone
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(backbone.output_dim, num_classes)
        nn.init.normal_(self.classifier.weight, std=initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        pooled = self.backbone.pooled(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(pooled))


class SpanExtractor(nn.Module):
    """sequence output -> dense to 2: start and end logits per token (SQuAD-style QA)."""

    def __init__(self, backbone: nn.Module, dropout: float = 0.1, initializer_range: float = 0.02):
        super().__init__()
        self.backbone = backbone
        self.dropout = Dropout(dropout)
        self.qa_outputs = nn.Linear(backbone.output_dim, 2)
        nn.init.normal_(self.qa_outputs.weight, std=initializer_range)
        nn.init.zeros_(self.qa_outputs.bias)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> tuple[torch.Tensor, torch.Tensor]:
        sequence, _ = self.backbone(input_ids, attention_mask, token_type_ids)
        start, end = self.qa_outputs(self.dropout(sequence)).unbind(-1)
        return start, end
