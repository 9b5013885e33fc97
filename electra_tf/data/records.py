"""Feature arrays -> serialized `tf.train.Example` records, a chunk at a time.

Building one `tf.train.Example` per record through the protobuf API costs ~50 us; the data
builder writes millions, so this module writes the protobuf wire format of a whole chunk in one
compiled loop (Numba, as electra_tf/data/packing.py). The bytes equal
`tf.train.Example(...).SerializeToString(deterministic=True)` (tested), so any TFRecord reader
(ours, the official builder's, NVIDIA's) parses them.

Wire format of an int64 Example: Example{1: Features{1: repeated map entry {1: key,
2: Feature{3: Int64List{1: packed varints}}}}}, map entries in sorted key order.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _varint_size(value):
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


@_jit
def _put_varint(out, pos, value):
    """Writes `value` as a varint at out[pos:]; returns the next position."""
    while value >= 0x80:
        out[pos] = (value & 0x7F) | 0x80
        value >>= 7
        pos += 1
    out[pos] = value
    return pos + 1


@_jit
def _field_size(payload):
    """Bytes of a length-delimited field (one-byte tag) with `payload` bytes."""
    return 1 + _varint_size(payload) + payload


@_jit
def _encode(values, column_splits, keys, key_splits):
    """values int64 [E, C], feature f in columns column_splits[f]:column_splits[f + 1], its name
    keys[key_splits[f]:key_splits[f + 1]] -> (record bytes uint8 [total], record ends [E])."""
    rows, features = values.shape[0], len(column_splits) - 1
    packed = np.zeros((rows, features), np.int64)  # [E, F] bytes of each packed varint list
    entries = np.zeros((rows, features), np.int64)  # [E, F] bytes inside each map entry
    bodies = np.zeros(rows, np.int64)  # [E] bytes of each record's Features
    ends = np.zeros(rows, np.int64)
    total = 0
    for e in range(rows):
        body = 0
        for f in range(features):
            for c in range(column_splits[f], column_splits[f + 1]):
                packed[e, f] += _varint_size(values[e, c])
            feature = _field_size(_field_size(packed[e, f]))  # Feature{3: Int64List{1: ...}}
            entries[e, f] = _field_size(key_splits[f + 1] - key_splits[f]) + _field_size(feature)
            body += _field_size(entries[e, f])
        bodies[e] = body
        total += _field_size(body)
        ends[e] = total
    out = np.empty(total, np.uint8)
    pos = 0
    for e in range(rows):
        out[pos] = 0x0A  # Example.features
        pos = _put_varint(out, pos + 1, bodies[e])
        for f in range(features):
            out[pos] = 0x0A  # Features.feature (a map entry)
            pos = _put_varint(out, pos + 1, entries[e, f])
            out[pos] = 0x0A  # entry key
            pos = _put_varint(out, pos + 1, key_splits[f + 1] - key_splits[f])
            for k in range(key_splits[f], key_splits[f + 1]):
                out[pos] = keys[k]
                pos += 1
            int64_list = _field_size(packed[e, f])
            out[pos] = 0x12  # entry value: Feature
            pos = _put_varint(out, pos + 1, _field_size(int64_list))
            out[pos] = 0x1A  # Feature.int64_list
            pos = _put_varint(out, pos + 1, int64_list)
            out[pos] = 0x0A  # Int64List.value, packed
            pos = _put_varint(out, pos + 1, packed[e, f])
            for c in range(column_splits[f], column_splits[f + 1]):
                pos = _put_varint(out, pos, values[e, c])
    return out, ends


def encode_examples(features: dict[str, np.ndarray]) -> list[bytes]:
    """{name: non-negative int array [E, L_name]} -> E serialized tf.train.Example records."""
    names = sorted(features)
    arrays = [np.asarray(features[name], np.int64) for name in names]
    if not arrays or len(arrays[0]) == 0:
        return []
    for name, array in zip(names, arrays):
        if array.ndim != 2 or len(array) != len(arrays[0]):
            raise ValueError(f"feature {name}: expected [{len(arrays[0])}, length], got "
                             f"shape {array.shape}")
        if array.size and array.min() < 0:
            raise ValueError(f"feature {name}: values must be non-negative, got {array.min()}")
    keys = [name.encode() for name in names]
    data, ends = _encode(np.concatenate(arrays, axis=1),
                         np.cumsum([0] + [a.shape[1] for a in arrays], dtype=np.int64),
                         np.frombuffer(b"".join(keys), np.uint8),
                         np.cumsum([0] + [len(k) for k in keys], dtype=np.int64))
    flat, ends = data.tobytes(), ends.tolist()
    return [flat[start:end] for start, end in zip([0] + ends[:-1], ends)]
