"""Chinese word boundaries from jieba through the shards to whole-word masking."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import tokenization
from electra_tf.data import pipeline, preprocess

jieba = pytest.importorskip("jieba", reason="the zh extra (jieba) is not installed")

# Lines written for this test (not from any dataset): a Latin word, full-width digits
LINES = ["配置不错，性价比挺高的，自带Windows驱动光盘。", "１９９７年１月１５日，天气很好。",
         "房间很干净，服务态度也很好，下次还会再来。", "物流很快，包装完好，非常满意！",
         "书的内容很空洞，根本不值这个价。", "质量太差了，用了两天就坏了，客服也不理人。"]
# What the shards must say of the first two: jieba's words, except that jieba cuts full-width
# numbers into characters where the tokenizer keeps one token ("１９９７"), which starts a word
WORDS = {LINES[0]: "配置 不错 ， 性价比 挺 高 的 ， 自带 windows 驱动 光盘 。",
         LINES[1]: "１９９７ 年 １ 月 １５ 日 ， 天气 很 好 。"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("zh")
    text = root / "zh.txt"
    # 120 documents of 3 lines (a row each, none cut): enough rows for batches of 16
    rng = np.random.default_rng(0)
    docs = ["\n".join(rng.choice(LINES, 3)) for _ in range(120)]
    text.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    vocab = tokenization.learn_vocab([str(text)], 400, str(root / "vocab.txt"), True)
    built = {}
    for segmenter in ("", "jieba"):
        out = root / (segmenter or "plain")
        preprocess.build([str(text)], vocab, str(out), preprocess.BuildOptions(
            max_seq_length=128, word_segmenter=segmenter))
        built[segmenter] = out
    return vocab, built


def read(directory):
    rows = []
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(f"{directory}/pretrain_data*")):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append({k: np.array(v.int64_list.value) for k, v in feature.items()})
    return rows


def words_of(row, vocab):
    """A row's words, as its flags cut it (continuing pieces joined without their "##")."""
    out = []
    for token_id, continues, live in zip(row["input_ids"], row["word_continues"],
                                         row["input_mask"]):
        if live:
            token = vocab.tokens[token_id]
            out.append(token.removeprefix("##") if continues else " " + token)
    return "".join(out).split()


def test_jieba_words_ride_beside_unchanged_ids(corpus):
    vocab, built = corpus
    plain, segmented = read(built[""]), read(built["jieba"])
    assert len(plain) == len(segmented)
    for a, b in zip(plain, segmented):
        assert set(b) == set(a) | {"word_continues"}
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # the words of a row, as the flags cut it, are the expected words of its lines
    texts = {" ".join(words_of(row, vocab)) for row in segmented}
    for words in WORDS.values():
        assert any(words in text for text in texts), (words, sorted(texts)[:3])


def test_whole_word_masking_masks_jieba_words_together(corpus):
    vocab, built = corpus
    ds = pipeline.pretraining_dataset(
        f"{built['jieba']}/pretrain_data*", 16, 128,
        pipeline.MaskingSpec(0.15, 19, vocab.mask_id, vocab.never_masked_ids,
                             whole_word_masking=True), training=False, deterministic=True)
    rows = read(built["jieba"])
    partial = whole = 0
    for b, batch in enumerate(ds):
        positions = batch["masked_lm_positions"].numpy()
        weights = batch["masked_lm_weights"].numpy()
        for i in range(len(positions)):
            row = rows[b * 16 + i]
            chosen = set(positions[i][weights[i] > 0].tolist())
            starts = [p for p in range(128) if row["input_mask"][p] and not
                      row["word_continues"][p]]
            for start, end in zip(starts, starts[1:] + [int(row["input_mask"].sum())]):
                hit = chosen.intersection(range(start, end))
                partial += bool(hit) and len(hit) < end - start
                whole += len(hit) == end - start > 1
    assert partial == 0 and whole > 20


def test_an_unknown_segmenter_is_named(tmp_path, corpus):
    from electra_tf.errors import DataError

    vocab, _ = corpus
    text = tmp_path / "t.txt"
    text.write_text(LINES[0] + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="word_segmenter 'thulac': expected one of"):
        preprocess.build([str(text)], vocab, str(tmp_path / "out"),
                         preprocess.BuildOptions(word_segmenter="thulac"))
