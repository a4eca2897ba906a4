from textmaker.text.words import PAD_ID, START_ID, UNK_ID, WordTokenizer


def test_vocab_by_frequency_then_alphabet():
    tok = WordTokenizer.build(["b a a", "c b a", "d"], vocab_size=6)
    assert tok.vocab == ["<PAD>", "<START>", "<UNKNOWN>", "a", "b", "c"]  # c beats d alphabetically


def test_encode_splits_marks_unknown_and_truncates():
    tok = WordTokenizer.build(["Don't stop, believing!"], vocab_size=100)
    assert tok.tokenize("DON'T stop...now") == ["DON'T", "stop", "now"]
    ids = tok.encode("DON'T stop...now")
    assert ids[0] == START_ID and ids[-1] == UNK_ID and PAD_ID not in ids
    assert ids[1] == tok.encode("don't")[1] != UNK_ID  # the UPPER form maps to the word's id
    assert len(tok.encode("don't " * 50, max_length=10)) == 10


def test_lowercasing_lives_in_the_vocabulary_as_the_device_needs():
    """MediaPipe's RegexTokenizer never lower-cases: each word is listed in its case forms, and
    forms seen in training ("McDonald") too, all with the word's id; lookup is exact."""
    tok = WordTokenizer.build(["great film", "McDonald ate a GREAT Great great burger"], vocab_size=100)
    great = tok.encode("great")[1]
    assert tok.encode("Great GREAT")[1:] == [great, great]
    assert tok.encode("McDonald mcdonald Mcdonald MCDONALD")[1:] == [tok.encode("mcdonald")[1]] * 4
    assert tok.encode("gReAt")[1] == UNK_ID  # neither listed nor seen: unknown here as on the device
    assert tok.vocab_size == len(tok.vocab) == 3 + 6


def test_split_is_ascii_like_re2():
    """RE2's \\w (MediaPipe's on-device split) is ASCII-only: accented letters are delimiters."""
    tok = WordTokenizer.build(["café naïve Amélie"], vocab_size=100)
    assert tok.tokenize("café naïve Amélie") == ["caf", "na", "ve", "Am", "lie"]
    assert tok.tokenize("l'été_2") == ["l'", "t", "_2"]


def test_save_writes_mediapipe_word_id_lines_and_loads_back(tmp_path):
    tok = WordTokenizer.build(["one two three two Two"], vocab_size=10)
    tok.save(tmp_path / "vocab.txt")
    lines = (tmp_path / "vocab.txt").read_text().splitlines()
    assert lines[:3] == ["<PAD> 0", "<START> 1", "<UNKNOWN> 2"]
    assert {"two 3", "Two 3", "TWO 3"} <= set(lines)
    again = WordTokenizer.load(tmp_path / "vocab.txt")
    assert again.vocab == tok.vocab and again.forms == tok.forms
    assert again.encode("two One THREE") == tok.encode("two One THREE")


def test_loads_the_one_word_per_line_vocabulary_of_textmaker_0_1(tmp_path):
    (tmp_path / "vocab.txt").write_text("<PAD>\n<START>\n<UNKNOWN>\nfilm\ngood\n")
    tok = WordTokenizer.load(tmp_path / "vocab.txt")
    assert tok.encode("Good FILM film") == [START_ID, 4, 3, 3]


def test_tokenizer_json_gives_any_tokenizers_user_the_same_ids(tmp_path):
    """The exported tokenizer.json (lower-casing, RE2's ASCII split, WordLevel, <START> first) gives
    textmaker's ids on real cased reviews; it differs only on case forms never listed nor seen."""
    import tarfile

    from tokenizers import Tokenizer

    from tests.conftest import IMDB

    with tarfile.open(IMDB) as tar:
        texts = [tar.extractfile(m).read().decode("utf-8") for m in tar if m.isfile()]
    tok = WordTokenizer.build(texts[:300], vocab_size=5000)
    hf = Tokenizer.from_str(tok.to_json())
    held = texts[300:] + ["Café NAÏVE don't-stop   _under_score", ""]
    same = [hf.encode(t).ids == tok.encode(t) for t in held]
    assert sum(same) >= 0.95 * len(held), sum(same)
    for t in held:  # where they differ, it is a case form textmaker does not list
        for word, a, b in zip(tok.tokenize(t), hf.encode(t).ids[1:], tok.encode(t)[1:]):
            assert a == b or (b == UNK_ID and word not in tok.forms and word.lower() in tok.forms), word
