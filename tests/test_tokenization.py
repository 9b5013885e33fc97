"""Vocabulary checks and the shared tokenizer."""

import re

import pytest

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
