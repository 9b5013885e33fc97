"""Direct protobuf encoding of the builder's records equals the protobuf library's."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.data import records


def reference(features: dict[str, np.ndarray], i: int) -> bytes:
    feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v[i].tolist()))
               for k, v in features.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(
        deterministic=True)


def test_encoding_is_byte_identical_to_protobuf_across_varint_widths():
    rng = np.random.default_rng(0)
    # ids spanning 1-, 2- and 3-byte varints, incl. the boundaries
    ids = rng.integers(0, 1 << 21, (50, 40))
    ids[:, :6] = [0, 127, 128, 16383, 16384, (1 << 21) - 1]
    features = {"input_ids": ids, "input_mask": rng.integers(0, 2, (50, 40)),
                "segment_ids": rng.integers(0, 2, (50, 40)),
                "a_wide": rng.integers(0, 1 << 62, (50, 3)) >> rng.integers(0, 62, (50, 3))}
    encoded = records.encode_examples(features)
    assert len(encoded) == 50
    for i, data in enumerate(encoded):
        assert data == reference(features, i)
    parsed = tf.io.parse_example(encoded, {k: tf.io.FixedLenFeature([v.shape[1]], tf.int64)
                                           for k, v in features.items()})
    for k, v in features.items():
        np.testing.assert_array_equal(parsed[k].numpy(), v)


def test_out_of_range_values_are_refused():
    with pytest.raises(ValueError, match="input_ids: values must be non-negative, got -1"):
        records.encode_examples({"input_ids": np.array([[-1, 3]])})
    with pytest.raises(ValueError, match=r"input_mask: expected \[1, length\]"):
        records.encode_examples({"input_ids": np.array([[1, 3]]), "input_mask": np.ones(2)})


def test_no_rows_encode_to_no_records():
    assert records.encode_examples({"input_ids": np.zeros((0, 8), np.int64)}) == []
    assert records.encode_examples({}) == []
