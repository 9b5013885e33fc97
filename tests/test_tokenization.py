"""Vocabulary checks and the shared tokenizer."""

import re

import pytest
import tensorflow as tf

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
# Where tensorflow-text (both tokenizers) departs from the original BERT tokenizer: control
# characters split words instead of vanishing, and compatibility characters are decomposed.
KNOWN_DIFFERENCES = {"and\x00control": (["and", "control"], ["and", "##con", "##tro", "##l"]),
                     "ﬁne": (["fine"], ["ﬁ", "##ne"])}


def test_fast_tokenizer_equals_reference_tokenizers_on_edge_cases(shared_dir):
    """FastBertTokenizer (ours) == tensorflow-text's BertTokenizer == transformers' BertTokenizer
    on accents, emoji, control characters, CJK, punctuation, over-long words and empty text."""
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
        assert [vocab.tokens[i] for i in ours.ids(text)] == tf_text_tokens
        assert ref.tokenize(text) == original_tokens


def test_cached_tokenizer_models_give_the_same_ids(tmp_path, monkeypatch):
    """The normalizer and WordPiece models are cached per tensorflow-text version, vocabulary
    and casing; a tokenizer from the cache equals tensorflow-text's own FastBertTokenizer."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    vocab = tokenization.load_vocab(write(tmp_path, SPECIALS + ["hello", "cafe", "un",
                                                                "##believ", "##able", "!"]))
    monkeypatch.setenv("ELECTRA_TF_CACHE", str(tmp_path / "cache"))
    texts = tf.constant(EDGE_TEXTS + ["Hello CAFÉ unbelievable!", "HELLO cafe"])
    for lower_case in (True, False):
        reference = tf_text.FastBertTokenizer(
            list(vocab.tokens), token_out_type=tf.int64, unknown_token="[UNK]",
            lower_case_nfd_strip_accents=lower_case).tokenize(texts).to_list()
        built = tokenization.WordPieceTokenizer(vocab, lower_case).tokenize(texts).to_list()
        cached = tokenization.WordPieceTokenizer(vocab, lower_case).tokenize(texts).to_list()
        assert built == cached == reference
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 4 and all(f.startswith("tokenizer-") for f in files)  # 2 casings x 2
    other = tokenization.load_vocab(write(tmp_path, SPECIALS + ["hello"], "other.txt"))
    assert tokenization.WordPieceTokenizer(other).ids("hello cafe") == [5, other.unk_id]
    monkeypatch.setenv("ELECTRA_TF_CACHE", "")  # disabled: builds, writes nothing
    assert tokenization.WordPieceTokenizer(vocab).ids("Hello") == [5]
    assert len(list((tmp_path / "cache").iterdir())) == 5  # only the other vocab's wordpiece


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
    learned from the shared corpus about a fifth (the README quotes both)."""
    uncased = tokenization.load_vocab(str(shared_dir / "data" / "vocab" / "bert-base-uncased.txt"))
    assert tokenization.casing_mismatch(uncased, lower_case=True) is None
    assert "(0.0068% of its tokens" in tokenization.casing_mismatch(uncased, lower_case=False)
    cased = tokenization.learn_vocab([str(shared_dir / "data" / "corpus" / "web.txt")], 8192,
                                     str(tmp_path / "vocab.txt"), lower_case=False)
    assert tokenization.casing_mismatch(cased, lower_case=False) is None
    share = float(re.search(r"looks cased \(([\d.]+)%", tokenization.casing_mismatch(
        cased, lower_case=True)).group(1))
    assert 15 < share < 25, share
