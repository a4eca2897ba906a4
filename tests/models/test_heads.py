import torch

from textmaker.models.bert import BertConfig, BertModel
from textmaker.models.heads import SequenceClassifier, SpanExtractor

TINY = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=64)
IDS = torch.tensor([[2, 5, 7, 9, 11, 13], [2, 8, 3, 0, 0, 0]])


def _rows_into_last_feed_forward(head) -> list[tuple[int, ...]]:
    seen = []
    last = head.backbone.encoder.layer[-1].intermediate.dense
    last.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    return seen


def test_classifier_runs_the_last_layer_for_the_cls_row_only_with_the_full_pass_logits():
    torch.manual_seed(0)
    clf = SequenceClassifier(BertModel(TINY), 3).eval()
    seen = _rows_into_last_feed_forward(clf)
    mask = (IDS != 0).long()
    with torch.no_grad():
        logits = clf(IDS, mask)
        assert seen == [(2, 1, 32)]  # the feed-forward takes one row per sentence, hidden size 32
        full = clf.classifier(clf.backbone(IDS, mask)[1])
    assert torch.allclose(logits, full, atol=1e-6)


def test_span_extractor_runs_the_last_layer_for_every_row():
    torch.manual_seed(0)
    qa = SpanExtractor(BertModel(TINY)).eval()
    seen = _rows_into_last_feed_forward(qa)
    with torch.no_grad():
        start, end = qa(IDS, (IDS != 0).long())
    assert seen == [(2, 6, 32)] and start.shape == end.shape == (2, 6)
