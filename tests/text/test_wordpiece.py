import pytest

from textmaker.errors import TextmakerError
from textmaker.presets import BUNDLED_VOCAB
from textmaker.text import WordPieceTokenizer

SENTENCES = [
    "it 's a charming and often affecting journey .",
    "Héllo, Wörld! The naïve café's crème brûlée — unaffable.",
    "  odd\twhitespace\u00a0and\u2003spaces  ",
    "中文字符 mixed with English 123,456.78",
]


@pytest.mark.encoder
def test_ids_match_transformers_bert_tokenizer(minilm_dir):
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))
    tok = WordPieceTokenizer(minilm_dir / "vocab.txt", lowercase=True)
    for s in SENTENCES:
        assert tok.encode(s).ids == ref(s)["input_ids"]
    pair = tok.encode(SENTENCES[0], SENTENCES[1])
    r = ref(SENTENCES[0], SENTENCES[1])
    assert pair.ids == r["input_ids"] and pair.type_ids == r["token_type_ids"]


@pytest.mark.encoder
def test_accent_keeping_ids_match_transformers_with_strip_accents_false(minilm_dir):
    """What new models use: lower-case, keep accents, as MediaPipe's on-device BertTokenizer does."""
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertTokenizerFast.from_pretrained(str(minilm_dir), strip_accents=False)
    tok = WordPieceTokenizer(minilm_dir / "vocab.txt", lowercase=True, strip_accents=False)
    for s in SENTENCES:
        assert tok.encode(s).ids == ref(s)["input_ids"]
    assert tok.tokenize("Café") != WordPieceTokenizer(minilm_dir / "vocab.txt").tokenize("Café") == ["cafe"]


def test_offsets_point_at_the_original_characters():
    tok = WordPieceTokenizer(BUNDLED_VOCAB)
    text = SENTENCES[1]
    e = tok.encode(text)
    pieces = [text[s:t] for (s, t), sid in zip(e.offsets, e.sequence_ids) if sid == 0]
    assert pieces[:4] == ["Héllo", ",", "Wörld", "!"]
    assert "café" in "".join(pieces) or "caf" in pieces


def test_truncation_and_batch():
    tok = WordPieceTokenizer(BUNDLED_VOCAB)
    long = " ".join(["word"] * 100)
    e = tok.encode_batch([long, "short"], max_length=16)
    assert len(e[0].ids) == 16 and e[0].ids[0] == tok.cls_id and e[0].ids[-1] == tok.sep_id
    assert len(e[1].ids) == 3
    pair = tok.encode(long, long, max_length=20)
    assert len(pair.ids) == 20 and pair.type_ids.count(1) in (9, 10)


def test_lowercase_switch():
    assert WordPieceTokenizer(BUNDLED_VOCAB, lowercase=True).tokenize("Hello") == ["hello"]
    assert WordPieceTokenizer(BUNDLED_VOCAB, lowercase=False).tokenize("Hello") != ["hello"]


def test_not_a_vocab(tmp_path):
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    with pytest.raises(TextmakerError, match=r"no \[PAD\] token"):
        WordPieceTokenizer(tmp_path / "vocab.txt")
    with pytest.raises(TextmakerError, match="no vocabulary file"):
        WordPieceTokenizer(tmp_path / "missing.txt")
