"""The compiled packing equals a plain-Python transcription of the official algorithm."""

import numpy as np
import pytest

from electra_tf.data import packing

CLS, SEP, PAD = 2, 3, 0
MASK64 = (1 << 64) - 1


# --- the reference: electra/build_pretraining_dataset.py's ExampleBuilder, per document, with
# --- the documented per-document SplitMix64 generator, in Python integers

def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class Generator:
    def __init__(self, seed, doc_index, stream=0):
        self.state = mix64((seed * 0x100000001B3 + doc_index * 2 + stream) & MASK64)

    def random(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        return (mix64(self.state) >> 11) / (1 << 53)

    def randint(self, low, high):
        return low + int(self.random() * (high - low + 1))


def reference_document(sentences, rng, max_len):
    """Non-empty token lists -> [(first, second)] segment pairs and the truncated-token count."""
    def next_target():
        return rng.randint(5, max_len) if rng.random() < 0.05 else max_len

    def make_pair(group, target):
        first_target = 100_000 if rng.random() < 0.1 else (target - 3) // 2
        first, second = [], []
        for s in group:
            if (not first or len(first) + len(s) < first_target
                    or (not second and len(first) < first_target and rng.random() < 0.5)):
                first += s
            else:
                second += s
        total = len(first) + len(second)
        first = first[:max_len - 2]
        second = second[:max(0, max_len - len(first) - 3)]
        return (first, second), total - len(first) - len(second)

    pairs, dropped, group, length, target = [], 0, [], 0, next_target()
    for s in sentences:
        group.append(s)
        length += len(s)
        if length >= target:
            pair, lost = make_pair(group, target)
            pairs.append(pair)
            dropped += lost
            group, length, target = [], 0, next_target()
    if length:
        pair, lost = make_pair(group, target)
        pairs.append(pair)
        dropped += lost
    return pairs, dropped


def random_chunk(rng, docs, max_sentence):
    """docs documents of 0-15 lines of 0..max_sentence tokens -> (docs as token lists, ids,
    line_splits, doc_splits); some lines are empty (lines that tokenize to nothing)."""
    documents = [[list(rng.integers(5, 30000, rng.integers(0, max_sentence + 1)))
                  for _ in range(rng.integers(0, 16))] for _ in range(docs)]
    lines = [line for doc in documents for line in doc]
    ids = np.array([t for line in lines for t in line], np.int32)
    line_splits = np.cumsum([0] + [len(line) for line in lines], dtype=np.int64)
    doc_splits = np.cumsum([0] + [len(doc) for doc in documents], dtype=np.int64)
    return documents, ids, line_splits, doc_splits


def pack(ids, line_splits, doc_splits, first_doc, seed, max_len):
    return packing.pack_documents(ids, line_splits, doc_splits, first_doc, np.uint64(seed),
                                  max_len, CLS, SEP, PAD)


@pytest.mark.parametrize("max_len,max_sentence,seed,first_doc", [
    (128, 40, 0, 0), (32, 60, 12345, 7), (16, 200, MASK64, 10**9), (9, 5, 3, 1)])
def test_equals_the_reference_algorithm(max_len, max_sentence, seed, first_doc):
    rng = np.random.default_rng(max_len)
    documents, ids, line_splits, doc_splits = random_chunk(rng, 300, max_sentence)
    input_ids, lengths, first_ends, example_docs, truncated = pack(
        ids, line_splits, doc_splits, first_doc, seed, max_len)
    want_rows, want_docs, want_truncated = [], [], 0
    for d, doc in enumerate(documents):
        pairs, dropped = reference_document([s for s in doc if s],
                                            Generator(seed, first_doc + d), max_len)
        want_rows += pairs
        want_docs += [first_doc + d] * len(pairs)
        want_truncated += dropped
    assert len(want_rows) > 200 and want_truncated > 0
    assert input_ids.shape == (len(want_rows), max_len)
    np.testing.assert_array_equal(example_docs, want_docs)
    assert truncated == want_truncated
    for row, n, end, (first, second) in zip(input_ids, lengths, first_ends, want_rows):
        want = [CLS, *first, SEP, *second, SEP] if second else [CLS, *first, SEP]
        assert row[:n].tolist() == want and (row[n:] == PAD).all()
        assert end == (len(first) + 2 if second else max_len)


def test_document_uniforms_are_the_first_draw_of_each_documents_generator():
    got = packing.document_uniforms(np.uint64(99), 40, 50, 1)
    np.testing.assert_array_equal(got, [Generator(99, 40 + d, stream=1).random()
                                        for d in range(50)])
    assert 0.4 < got.mean() < 0.6


def test_single_segment_and_random_length_rates():
    documents = 20  # long documents of 10-token sentences: ~6,400 examples
    ids = np.full(documents * 4000 * 10, 7, np.int32)
    line_splits = np.arange(0, len(ids) + 1, 10, dtype=np.int64)
    doc_splits = np.arange(0, documents * 4000 + 1, 4000, dtype=np.int64)
    input_ids, lengths, first_ends, example_docs, _ = pack(ids, line_splits, doc_splits, 0, 0,
                                                           128)
    rest = np.r_[example_docs[1:] != example_docs[:-1], True]  # a document's last example
    lengths, first_ends = lengths[~rest], first_ends[~rest]
    single = np.mean(first_ends == 128)
    assert 0.08 < single < 0.12  # 10% single-segment (a few more when one sentence fills it)
    short = np.mean(lengths - 3 + (first_ends == 128) < 120)  # random targets (5%) -> short
    assert 0.035 < short < 0.06  # 5% x P(target < 120) = 5% x 115/124 = 4.6%


def test_features_layout_specials_segments_padding():
    # one document, three lines, max_len 12: whatever the draws, the layout rules hold
    ids = np.array([10, 11, 12, 13, 14, 15, 16, 17, 18], np.int32)
    line_splits = np.array([0, 3, 6, 9], np.int64)
    for seed in range(40):
        input_ids, lengths, first_ends, _, truncated = pack(ids, line_splits,
                                                            np.array([0, 3], np.int64), 0,
                                                            seed, 12)
        f = packing.features(input_ids, lengths, first_ends)
        assert set(f) == {"input_ids", "input_mask", "segment_ids"}
        assert all(v.dtype == np.int64 and v.shape == input_ids.shape for v in f.values())
        for row, mask, seg in zip(f["input_ids"], f["input_mask"], f["segment_ids"]):
            n = mask.sum()
            assert (mask[:n] == 1).all() and (mask[n:] == 0).all()
            assert row[0] == CLS and row[n - 1] == SEP and (row[n:] == PAD).all()
            seps = np.flatnonzero(row == SEP)
            assert len(seps) in (1, 2)
            assert (seg[:seps[0] + 1] == 0).all() and (seg[seps[0] + 1:n] == 1).all()
            assert (seg[n:] == 0).all()
        assert truncated == 0
        tokens = f["input_ids"][(f["input_ids"] > SEP)]
        assert sorted(tokens.tolist()) == ids.tolist()  # nothing lost or duplicated


def test_empty_chunk_and_documents_without_tokens():
    empty = np.zeros(0, np.int32)
    input_ids, lengths, _, _, truncated = pack(empty, np.zeros(3, np.int64),
                                               np.array([0, 1, 2], np.int64), 0, 0, 16)
    assert input_ids.shape == (0, 16) and lengths.shape == (0,) and truncated == 0
