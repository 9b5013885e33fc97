"""BERT's normalization as TF ops: the fast path for plain ASCII, per-character normalization
for offsets, and offsets back into the raw text."""

import pytest
import tensorflow as tf
from helpers import ZH_TEXTS

from electra_tf import normalization, tokenization

TEXTS = ZH_TEXTS + ["Hello WORLD", "tab\there", "A\x00B\x7fC\x1fD", "ΣΑΣ ΟΔΟΣ", "Crème ÉCOLE",
                    "ﬁne Straße", "x" * 50, "", "  ", "line\r\nend", "İstanbul"]


@pytest.mark.parametrize("lower_case", [True, False])
def test_plain_ascii_rows_take_the_short_path_to_the_same_result(lower_case):
    texts = tf.constant(TEXTS)
    full = normalization._normalize(texts, lower_case).numpy().tolist()
    assert normalization.normalize(texts, lower_case).numpy().tolist() == full
    assert normalization.normalize(texts[3:9], lower_case).numpy().tolist() == full[3:9]
    grid = tf.reshape(tf.constant(TEXTS[:20]), [4, 5])  # any shape
    assert normalization.normalize(grid, lower_case).shape == [4, 5]
    assert normalization.normalize(tf.constant([], tf.string), lower_case).shape == [0]
    assert normalization.normalize(tf.constant("A\x00B"), lower_case).numpy() == (
        b"ab" if lower_case else b"AB")


@pytest.mark.parametrize("lower_case", [True, False])
def test_normalization_character_by_character_equals_whole_text(lower_case):
    texts = tf.constant(TEXTS)
    joined, starts, ends, norm_ends = normalization.normalize_with_offsets(texts, lower_case)
    assert joined.numpy().tolist() == normalization.normalize(texts, lower_case).numpy().tolist()
    for text, s, e, n, out in zip(TEXTS, starts.to_list(), ends.to_list(), norm_ends.to_list(),
                                  joined.numpy()):
        raw = text.encode("utf-8")
        assert b"".join(raw[a:b] for a, b in zip(s, e)) == raw
        assert (n[-1] if n else 0) == len(out)


@pytest.mark.parametrize("lower_case", [True, False])
def test_offsets_point_into_the_raw_text(tmp_path, lower_case):
    """Pieces of characters that normalization changes or removes around them span the raw
    characters: "Ｗ" lower-cased, "é" without its accent, "\\x00" and "\\u200b" dropped."""
    tokens = list(tokenization.SPECIAL_TOKENS) + [
        "价", "格", "，", "１２８", "元", "ｗｉ", "##ｆｉ", "ＷｉＦｉ", "cafe", "café", "Café",
        "控", "制", "字"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tok = tokenization.WordPieceTokenizer(tokenization.load_vocab(str(path)), lower_case)
    texts = ["价格１２８元，ＷｉＦｉ Café", "控制\x00字\u200b，", "", "Café"]
    ids, starts, ends = tok.tokenize_with_offsets(tf.constant(texts))
    assert ids.to_list() == tok.tokenize(tf.constant(texts)).to_list()
    spans = [[text.encode()[s:e].decode() for s, e in zip(row_s, row_e)]
             for text, row_s, row_e in zip(texts, starts.to_list(), ends.to_list())]
    first = ["价", "格", "１２８", "元", "，"] + (["Ｗｉ", "Ｆｉ"] if lower_case else ["ＷｉＦｉ"])
    assert spans == [first + ["Café"], ["控", "制", "字", "，"], [], ["Café"]]
    pieces = [tokens[i] for i in ids[0].numpy()]
    assert pieces[-1] == ("cafe" if lower_case else "Café")


@pytest.mark.parametrize("lower_case", [True, False])
def test_bytes_that_are_not_utf8_go_as_when_the_builder_reads_them(lower_case):
    """Serving may get any bytes: they count as U+FFFD (which BERT removes), as the data
    builder's reading of a file makes them; ids and offsets agree."""
    vocab = tokenization.Vocab("vocab.txt", tokenization.SPECIAL_TOKENS + (
        "abc", "##def", "def", "ok", "x", "中", "caf", "##e"))
    tok = tokenization.WordPieceTokenizer(vocab, lower_case)
    raw = [b"abc\xff\xfedef ok", b"\xe4\xb8 x", b"caf\xc3\xa9 \xe4\xb8\xad", b"\x80"]
    read = [r.decode("utf-8", errors="replace") for r in raw]  # as tokenization.read_lines
    ids = tok.tokenize(tf.constant(raw)).to_list()
    assert ids == tok.tokenize(tf.constant(read)).to_list()
    assert ids[0] == [5, 6, 8] and ids[1] == [9] and ids[3] == []
    with_offsets, starts, ends = tok.tokenize_with_offsets(tf.constant(raw))
    assert with_offsets.to_list() == ids
    assert starts.to_list()[:2] == [[0, 5, 9], [3]] and ends.to_list()[:2] == [[3, 8, 11], [4]]
