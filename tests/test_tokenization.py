"""Vocabulary checks and the shared tokenizer."""

import re
import unicodedata

import numpy as np
import pytest
import tensorflow as tf
from helpers import ZH_TEXTS, zh_vocab

from electra_tf import tokenization


def write(tmp_path, tokens, name="vocab.txt"):
    path = tmp_path / name
    path.write_text("\n".join(tokens) + "\n")
    return str(path)


SPECIALS = list(tokenization.SPECIAL_TOKENS)


def test_special_ids_are_looked_up(tmp_path):
    vocab = tokenization.load_vocab(write(tmp_path, ["a"] + SPECIALS[::-1]))
    assert (vocab.mask_id, vocab.cls_id, vocab.pad_id) == (1, 3, 5)
    assert vocab.never_masked_ids == (3, 2, 1)


@pytest.mark.parametrize("tokens,message", [
    (["[PAD]", "[CLS]", "[SEP]", "[MASK]", "a"], "has no [UNK]"),
    (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], "has no [MASK]"),
    (SPECIALS + ["a", "b", "a"], "duplicate token 'a' at lines 6 and 8"),
    ([], "vocabulary is empty"),
])
def test_bad_vocab_errors_name_the_file(tmp_path, tokens, message):
    with pytest.raises(tokenization.VocabError, match=re.escape(message)) as err:
        tokenization.load_vocab(write(tmp_path, tokens))
    assert "vocab.txt" in str(err.value)


def test_size_must_match_config_and_missing_file(tmp_path):
    with pytest.raises(tokenization.VocabError, match="has 6 tokens but the model config's "
                       "vocab_size is 30522"):
        tokenization.load_vocab(write(tmp_path, SPECIALS + ["a"]), expected_size=30522)
    with pytest.raises(tokenization.VocabError, match="missing.txt: vocabulary file not found"):
        tokenization.load_vocab(str(tmp_path / "missing.txt"))


def test_tokenizer_lowercases_strips_accents_and_splits_pieces(tmp_path):
    vocab = tokenization.load_vocab(write(tmp_path, SPECIALS + ["hello", "cafe", "un",
                                                                "##believ", "##able", "!"]))
    tok = tokenization.WordPieceTokenizer(vocab)
    assert tok.ids("Hello CAFÉ unbelievable!") == [5, 6, 7, 8, 9, 10]
    assert tok.ids("zzz") == [vocab.unk_id]
    assert tokenization.WordPieceTokenizer(vocab, lower_case=False).ids("Hello") == [
        vocab.unk_id]
    text = "Hello CAFÉ unbelievable!"
    ids, starts, ends = tok.tokenize_with_offsets(tf.constant([text, "zzz"]))
    assert ids.to_list() == [[5, 6, 7, 8, 9, 10], [vocab.unk_id]]
    raw = text.encode("utf-8")  # byte offsets: É is two bytes
    assert [raw[s:e].decode() for s, e in zip(starts[0].numpy(), ends[0].numpy())] == [
        "Hello", "CAFÉ", "un", "believ", "able", "!"]


def test_builder_tokenization_matches_reference_vocab_on_real_text(shared_dir):
    """Our tokenizer on the standard BERT vocab agrees with transformers' BertTokenizer."""
    transformers = pytest.importorskip("transformers")
    path = str(shared_dir / "data" / "vocab" / "bert-base-uncased.txt")
    ours = tokenization.WordPieceTokenizer(tokenization.load_vocab(path))
    ref = transformers.BertTokenizer(path, do_lower_case=True)
    lines = [ln for ln in (shared_dir / "data" / "corpus" / "web.txt").read_text(
        encoding="utf-8").splitlines()[:400] if ln.strip()]
    for line in lines:
        assert ours.ids(line) == ref.convert_tokens_to_ids(ref.tokenize(line)), line


EDGE_TEXTS = ["", "   ", "Crème brûlée à São Paulo", "naïve Ångström ÉCOLE", "emoji 😀👍🏽 ok",
              "tab\tand\nnewline", "中文字符 mixed", "don't stop-believing...!?",
              "x" * 150 + " tail", "  leading and trailing  "]
# Where tensorflow-text's own normalization (both its tokenizers) departs from BERT's: control
# characters split words instead of vanishing, and compatibility characters are decomposed.
# Ours follows BERT (electra_tf.normalization).
KNOWN_DIFFERENCES = {"and\x00control": (["and", "control"], ["and", "##con", "##tro", "##l"]),
                     "ﬁne": (["fine"], ["ﬁ", "##ne"])}


def test_fast_tokenizer_equals_reference_tokenizers_on_edge_cases(shared_dir):
    """Ours == tensorflow-text's BertTokenizer == transformers' BertTokenizer on accents, emoji,
    CJK, punctuation, over-long words and empty text; where tensorflow-text's normalization
    departs from BERT's, ours follows BERT."""
    import tensorflow as tf
    import tensorflow_text as tf_text
    transformers = pytest.importorskip("transformers")
    path = str(shared_dir / "data" / "vocab" / "bert-base-uncased.txt")
    vocab = tokenization.load_vocab(path)
    ours = tokenization.WordPieceTokenizer(vocab)
    table = tf.lookup.StaticVocabularyTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(vocab.tokens)), tf.range(vocab.size, dtype=tf.int64)), 1)
    slow = tf_text.BertTokenizer(table, token_out_type=tf.int64, lower_case=True,
                                 unknown_token="[UNK]")
    ref = transformers.BertTokenizer(path, do_lower_case=True)
    lines = [ln for ln in (shared_dir / "data" / "corpus" / "fortune.txt").read_text(
        encoding="utf-8").splitlines()[:2000] if ln.strip()]
    texts = EDGE_TEXTS + lines
    fast_ids = ours.tokenize(tf.constant(texts)).to_list()
    slow_ids = slow.tokenize(tf.constant(texts)).merge_dims(-2, -1).to_list()
    for text, a, b in zip(texts, fast_ids, slow_ids):
        assert a == b == ref.convert_tokens_to_ids(ref.tokenize(text)), repr(text)
    for text, (tf_text_tokens, original_tokens) in KNOWN_DIFFERENCES.items():
        slow_tokens = slow.tokenize(tf.constant([text])).merge_dims(-2, -1)[0].numpy()
        assert [vocab.tokens[i] for i in slow_tokens] == tf_text_tokens
        assert [vocab.tokens[i] for i in ours.ids(text)] == ref.tokenize(text) == original_tokens


def test_cached_tokenizer_models_give_the_same_ids(tmp_path, monkeypatch):
    """The normalizer and WordPiece models are cached per tensorflow-text version and
    vocabulary (the normalizer, without lower-casing, serves both casings); a tokenizer from
    the cache equals tensorflow-text's own FastBertTokenizer after our normalization."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    from electra_tf import normalization

    vocab = tokenization.load_vocab(write(tmp_path, SPECIALS + ["hello", "cafe", "un",
                                                                "##believ", "##able", "!"]))
    monkeypatch.setenv("ELECTRA_TF_CACHE", str(tmp_path / "cache"))
    texts = tf.constant(EDGE_TEXTS + ["Hello CAFÉ unbelievable!", "HELLO cafe"])
    for lower_case in (True, False):
        reference = tf_text.FastBertTokenizer(
            list(vocab.tokens), token_out_type=tf.int64, unknown_token="[UNK]",
            lower_case_nfd_strip_accents=False).tokenize(
                normalization.normalize(texts, lower_case)).to_list()
        built = tokenization.WordPieceTokenizer(vocab, lower_case).tokenize(texts).to_list()
        cached = tokenization.WordPieceTokenizer(vocab, lower_case).tokenize(texts).to_list()
        assert built == cached == reference
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 2 and all(f.startswith("tokenizer-") for f in files)
    other = tokenization.load_vocab(write(tmp_path, SPECIALS + ["hello"], "other.txt"))
    assert tokenization.WordPieceTokenizer(other).ids("hello cafe") == [5, other.unk_id]
    monkeypatch.setenv("ELECTRA_TF_CACHE", "")  # disabled: builds, writes nothing
    assert tokenization.WordPieceTokenizer(vocab).ids("Hello") == [5]
    assert len(list((tmp_path / "cache").iterdir())) == 3  # only the other vocab's wordpiece


def test_casing_mismatch_is_told_from_the_vocabulary(tmp_path):
    words = [f"word{i}" for i in range(300)]
    uncased = tmp_path / "uncased.txt"
    uncased.write_text("\n".join(tokenization.SPECIAL_TOKENS + tuple(words)) + "\n")
    cased = tmp_path / "cased.txt"  # a tenth capitalised, like BERT's cased vocabularies
    cased.write_text("\n".join(tokenization.SPECIAL_TOKENS + tuple(
        w.title() if i % 10 == 0 else w for i, w in enumerate(words))) + "\n")
    uncased, cased = tokenization.load_vocab(str(uncased)), tokenization.load_vocab(str(cased))
    assert tokenization.casing_mismatch(uncased, lower_case=True) is None
    assert tokenization.casing_mismatch(cased, lower_case=False) is None
    warning = tokenization.casing_mismatch(uncased, lower_case=False)
    assert warning.startswith(f"{uncased.path} looks uncased (0% of its tokens")
    warning = tokenization.casing_mismatch(cased, lower_case=True)
    assert warning.startswith(f"{cased.path} looks cased (10% of its tokens")
    assert "--nodo_lower_case" in warning


def test_casing_is_told_right_on_real_vocabularies(shared_dir, tmp_path):
    """bert-base-uncased has 2 of 30,522 tokens with upper-case letters; a cased vocabulary
    learned from the shared corpus about a fifth (docs/data.md quotes both)."""
    uncased = tokenization.load_vocab(str(shared_dir / "data" / "vocab" / "bert-base-uncased.txt"))
    assert tokenization.casing_mismatch(uncased, lower_case=True) is None
    assert "(0.0068% of its tokens" in tokenization.casing_mismatch(uncased, lower_case=False)
    cased = tokenization.learn_vocab([str(shared_dir / "data" / "corpus" / "web.txt")], 8192,
                                     str(tmp_path / "vocab.txt"), lower_case=False)
    assert tokenization.casing_mismatch(cased, lower_case=False) is None
    share = float(re.search(r"looks cased \(([\d.]+)%", tokenization.casing_mismatch(
        cased, lower_case=True)).group(1))
    assert 15 < share < 25, share


def reference_ids(vocab: tokenization.Vocab, lower_case: bool, texts: list[str]):
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertTokenizer(vocab.path, do_lower_case=lower_case)
    return ref(texts, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("lower_case", [True, False])
def test_chinese_keeps_full_width_characters_as_bert_does(tmp_path, lower_case):
    """Full-width punctuation, digits and letters are tokens of their own, as in BERT's Chinese
    vocabularies: lower-casing does not fold "，" into "," nor "１" into "1"; each CJK
    character is a word; the learner's vocabulary holds them the same way."""
    vocab = zh_vocab(tmp_path, lower_case)
    assert {"，", "：", "！", "１", "（"} <= set(vocab.tokens)
    assert not any(t.startswith("##") and len(t) == 3 and "\u4e00" <= t[2] <= "\u9fff"
                   for t in vocab.tokens)  # no "##字": CJK characters stand alone
    tok = tokenization.WordPieceTokenizer(vocab, lower_case)
    tokens = [vocab.tokens[i] for i in tok.ids("价格１２８元，很轻！ＷｉＦｉ")]
    assert tokens == ["价", "格", "１２８", "元", "，", "很", "轻", "！",
                      "ｗｉｆｉ" if lower_case else "ＷｉＦｉ"]
    assert [vocab.tokens[i] for i in tok.ids("控制\x00字\u200b符")] == ["控", "制", "字", "符"]


@pytest.mark.parametrize("lower_case", [True, False])
def test_chinese_ids_equal_bert_tokenizer_on_a_written_sample(tmp_path, lower_case):
    vocab = zh_vocab(tmp_path, lower_case)
    texts = ZH_TEXTS + [" ".join(ZH_TEXTS), "ΣΑΣ Café ﬁne ß"]
    ours = tokenization.WordPieceTokenizer(vocab, lower_case).tokenize(tf.constant(texts))
    want = reference_ids(vocab, lower_case, texts)
    for text, got, expected in zip(texts, ours.to_list(), want):
        assert got == expected, repr(text)
    assert vocab.unk_id in ours.flat_values.numpy()  # the held-out texts have unknown ones


def test_every_cjk_character_splits_as_bert_tokenizer_does(tmp_path):
    """Each character of the CJK blocks (ideographs, compatibility ideographs, radicals,
    symbols and punctuation, kana, Hangul, full- and half-width forms, Extension B) between
    two letters: a word of its own, part of the word, or removed, as transformers'
    BertTokenizer does, both casings."""
    blocks = [(0x2E80, 0xA000), (0xAC00, 0xAC80), (0xF900, 0xFB00), (0xFE10, 0xFE20),
              (0xFE30, 0xFE50), (0xFF00, 0xFFF0), (0x20000, 0x20400), (0x2F800, 0x2FA20)]
    chars = [chr(c) for lo, hi in blocks for c in range(lo, hi)]
    texts = ["x" + c + "y" for c in chars]
    for lower_case in (True, False):
        forms = set("".join(texts))
        if lower_case:  # each character as the reference normalizes it (NFD: U+F900 -> 豈)
            forms |= set(unicodedata.normalize("NFD", "".join(texts)).lower())
        forms = sorted(c for c in forms if c.isprintable() and not c.isspace())
        vocab = tokenization.load_vocab(write(tmp_path, SPECIALS + forms + [
            "##" + c for c in forms if not _is_punctuation(c)], f"cjk-{lower_case}.txt"))
        ours = tokenization.WordPieceTokenizer(vocab, lower_case).tokenize(tf.constant(texts))
        want = reference_ids(vocab, lower_case, texts)
        wrong = [f"U+{ord(c):04X}" for c, got, expected in zip(chars, ours.to_list(), want)
                 if got != expected]
        assert not wrong, (lower_case, len(wrong), wrong[:20])


def _is_punctuation(char: str) -> bool:
    """BERT's punctuation: ASCII symbols and Unicode category P (a piece "##," cannot exist)."""
    return char.isascii() and not char.isalnum() or unicodedata.category(char).startswith("P")


def test_bert_ideograph_ranges_are_the_original_ones(tmp_path):
    """U+2B820-U+2B91F (CJK Extension E) are ideographs in BERT's table; transformers' Rust
    tokenizer misses them, ours follows the original."""
    vocab = tokenization.load_vocab(write(tmp_path, SPECIALS + ["x", "\U0002b820", "##y", "y"]))
    tok = tokenization.WordPieceTokenizer(vocab)
    assert [vocab.tokens[i] for i in tok.ids("x\U0002b820y")] == ["x", "\U0002b820", "y"]


@pytest.mark.parametrize("lower_case", [True, False])
def test_chinese_ids_equal_bert_tokenizer_on_real_text(shared_dir, tmp_path, lower_case):
    """Reviews and newspaper sentences of the shared Chinese data (a vocabulary learned from
    the train reviews, so the newspaper text has unknown characters too)."""
    zh = shared_dir / "data" / "zh"
    vocab = tokenization.learn_vocab([str(zh / "sentiment" / "train.tsv")], 8000,
                                     str(tmp_path / "vocab.txt"), lower_case=lower_case)
    texts = [line.split("\t", 1)[1] for line in tokenization.read_lines(
        str(zh / "sentiment" / "dev.tsv"))]
    sentence = []
    for line in tokenization.read_lines(str(zh / "ner" / "dev.txt")):
        if line.strip():
            sentence.append(line.split()[0])
        elif sentence:
            texts.append("".join(sentence))
            sentence = []
    assert len(texts) > 3500
    ours = tokenization.WordPieceTokenizer(vocab, lower_case).tokenize(tf.constant(texts))
    want = reference_ids(vocab, lower_case, texts)
    wrong = [text for text, got, expected in zip(texts, ours.to_list(), want) if got != expected]
    assert not wrong, (len(wrong), wrong[:3])
    full_width = vocab.id("，")
    assert (ours.flat_values.numpy() == full_width).sum() > 1000


def test_the_learned_vocabulary_is_the_same_in_every_process(tmp_path):
    # Many merges tie (every word twice): the trainer's own order for them changes from process
    # to process unless the "##" pieces are numbered up front.
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    letters = list("abcdefghij0123456789")
    words = ["".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(3000)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(words[i:i + 10]) for i in range(0, 3000, 10)) * 2)
    code = ("import sys; from electra_tf import tokenization; "
            "print(tokenization.learn_vocab([sys.argv[1]], 800, sys.argv[2]).sha256)")
    hashes = {subprocess.run([sys.executable, "-c", code, str(corpus), str(tmp_path / f"v{i}")],
                             capture_output=True, text=True, check=True).stdout
              for i in range(4)}
    assert len(hashes) == 1, hashes
