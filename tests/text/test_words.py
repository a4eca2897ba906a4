from textmaker.text.words import PAD_ID, START_ID, UNK_ID, WordTokenizer


def test_vocab_by_frequency_then_alphabet():
    tok = WordTokenizer.build(["b a a", "c b a", "d"], vocab_size=6)
    assert tok.vocab == ["<PAD>", "<START>", "<UNKNOWN>", "a", "b", "c"]  # c beats d alphabetically


def test_encode_lowercases_splits_and_marks_unknown():
    tok = WordTokenizer.build(["Don't stop, believing!"], vocab_size=100)
    assert tok.tokenize("DON'T stop...now") == ["don't", "stop", "now"]
    ids = tok.encode("DON'T stop...now")
    assert ids[0] == START_ID and ids[-1] == UNK_ID and PAD_ID not in ids
    assert len(tok.encode("don't " * 50, max_length=10)) == 10


def test_save_load_round_trip(tmp_path):
    tok = WordTokenizer.build(["one two three two"], vocab_size=10)
    tok.save(tmp_path / "vocab.txt")
    again = WordTokenizer.load(tmp_path / "vocab.txt")
    assert again.vocab == tok.vocab and again.encode("two one") == tok.encode("two one")
