"""Shared test fixtures: tiny configs and synthetic packed batches."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tokenizer models cached by the tests (and their subprocesses) stay out of the user's ~/.cache
os.environ.setdefault("ELECTRA_TF_CACHE", os.path.join(
    tempfile.gettempdir(), f"electra-tf-test-cache-{os.getuid()}"))

import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import electra_tf  # noqa: E402, F401  (first: it sets TF's oneDNN option as users get it)
from electra_tf import tokenization  # noqa: E402
from electra_tf.config import get_config  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
# Special ids of the test vocabularies: deliberately not BERT's 0/100/101/102/103.
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


# Chinese as people write it, for tests that need no shared data: full-width punctuation,
# digits and letters, the ideographic space, mixed Latin (accents, capitals), half-width
# katakana, Hangul, emoji, a compatibility ideograph, an Extension B ideograph, and format and
# control characters BERT removes.
ZH_TEXTS = [
    "配置不错，性价比挺高的。重量也很轻！",
    "房间：干净；服务？一般……价格１２８元，ＷｉＦｉ免费。",
    "自带Windows XP和Windows Vista两种驱动光盘（正版）",
    "「好评」《三体》——刘慈欣著，２００８年出版",
    "全角空格\u3000分隔，半角,逗号.句号 ＡＢＣ ａｂｃ",
    "Crème brûlée与ÉCOLE同行：naïve Ångström",
    "控制\x00字符\x07响铃\u200b零宽\ufeff和\ufffd替换\t制表\n换行",
    "emoji😀👍🏽表情〜～、“引号”‘单引号’",
    "兼容汉字\uf900与扩展B的\U00020000字",
    "ｶﾀｶﾅ半角片假名和カタカナ，한국어도",
    "",
    "\u3000\u3000",
]


def zh_vocab(directory, lower_case: bool) -> tokenization.Vocab:
    """A vocabulary learned from ZH_TEXTS (its last three left out, so some characters are
    [UNK]), written in `directory`."""
    corpus = directory / f"zh-{lower_case}.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in ZH_TEXTS[:-3]) + "\n",
                      encoding="utf-8")
    return tokenization.learn_vocab([str(corpus)], 500, str(directory / f"vocab-{lower_case}.txt"),
                                    lower_case=lower_case, min_frequency=1)


def tiny_config(vocab_size: int = 100, max_seq_length: int = 32, **model):
    """A very small model for unit tests (hidden 32, 2 layers, E=16 != H to exercise projection)."""
    sizes = dict(vocab_size=vocab_size, embedding_size=16, hidden_size=32, num_layers=2,
                 num_heads=2, intermediate_size=64, generator_fraction=0.5,
                 max_position_embeddings=64)
    sizes.update(model)
    return get_config("tiny").replace(model=sizes, pretrain={"max_seq_length": max_seq_length})


def packed_batch(batch_size: int, length: int, vocab_size: int, seed: int = 0,
                 min_len: int = 3) -> dict[str, tf.Tensor]:
    """Random packed sequences `[CLS] ... [SEP] [PAD]...` of mixed lengths, int32 [B, L]."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(min_len, length + 1, batch_size)
    ids = rng.integers(5, vocab_size, (batch_size, length))
    mask = (np.arange(length)[None] < lens[:, None]).astype(np.int32)
    ids = ids * mask
    ids[:, 0] = CLS
    ids[np.arange(batch_size), lens - 1] = SEP
    segments = np.zeros_like(ids)
    for i, n in enumerate(lens):
        if n > 6:  # two segments: [CLS] A [SEP] B [SEP]
            cut = n // 2
            ids[i, cut] = SEP
            segments[i, cut + 1:n] = 1
    return {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
            "segment_ids": tf.constant(segments, tf.int32)}


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED} (tests on real data need ../shared)")
    return SHARED
