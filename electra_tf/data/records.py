"""Feature arrays -> serialized `tf.train.Example` records, a chunk at a time.

Building one `tf.train.Example` per record through the protobuf API costs ~50 us; the data
builder writes millions, so this module lays out the features as arrays and writes the protobuf
wire format directly for a whole chunk at once with numpy (~40x faster). The bytes equal
`tf.train.Example(...).SerializeToString(deterministic=True)` (tested), so any TFRecord reader
(ours, the official builder's, NVIDIA's) parses them.

Wire format of a fixed-length int64 Example: Example{1: Features{1: repeated map entry
{1: key, 2: Feature{3: Int64List{1: packed varints}}}}}, map keys in sorted order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_MAX_VALUE = 1 << 21  # 3-byte varints cover every vocabulary id we can meet


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_VARINTS = [_varint(n) for n in range(1 << 12)]  # field lengths of records up to L=1024


def _field(tag: bytes, payload: bytes) -> bytes:
    n = len(payload)
    return tag + (_SMALL_VARINTS[n] if n < 1 << 12 else _varint(n)) + payload


def _packed_varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[E, L] non-negative ints < 2**21 -> (bytes uint8 [E, W], keep bool [E, W]): row i's
    packed varints are bytes[i][keep[i]] (W = L when every value fits one byte, else 3L)."""
    if values.size and (values.min() < 0 or values.max() >= _MAX_VALUE):
        raise ValueError(f"feature values must be in [0, {_MAX_VALUE}), got "
                         f"[{values.min()}, {values.max()}]")
    if not values.size or values.max() < 0x80:  # one byte per value (masks, segment ids)
        return values.astype(np.uint8), np.ones(values.shape, bool)
    v = values.astype(np.int32)
    two, three = v >= 1 << 7, v >= 1 << 14  # [E, L] bool: needs a 2nd / 3rd byte
    groups = np.stack([(v & 0x7F) | (two << 7), ((v >> 7) & 0x7F) | (three << 7), v >> 14],
                      axis=-1).astype(np.uint8)  # [E, L, 3]
    keep = np.stack([np.ones_like(two), two, three], axis=-1)  # [E, L, 3]
    return groups.reshape(len(v), -1), keep.reshape(len(v), -1)


def _by_length(lengths: np.ndarray, header: Callable[[int], bytes]) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Per-row headers that depend only on a row's payload length: [E] -> (uint8 [E, H], keep
    bool [E, H]), computed once per distinct length."""
    distinct, row_of = np.unique(lengths, return_inverse=True)
    headers = [header(int(n)) for n in distinct]
    width = max(len(h) for h in headers)
    table = np.zeros((len(headers), width), np.uint8)
    keep = np.zeros((len(headers), width), bool)
    for i, h in enumerate(headers):
        table[i, :len(h)] = np.frombuffer(h, np.uint8)
        keep[i, :len(h)] = True
    return table[row_of], keep[row_of]


def encode_examples(features: dict[str, np.ndarray]) -> list[bytes]:
    """{name: int array [E, L]} -> E serialized tf.train.Example records (int64 features).

    Every record's bytes are laid out in one [E, W] array with a keep mask (headers, then each
    feature's map entry, names in sorted order), so a chunk costs a few numpy calls."""
    rows = len(next(iter(features.values()))) if features else 0
    if rows == 0:
        return []
    parts = []  # (bytes [E, W_i], keep [E, W_i]) in record order
    for name in sorted(features):
        key = _field(b"\x0a", name.encode())
        payload, keep = _packed_varints(np.asarray(features[name]))

        def entry_header(n: int, key: bytes = key) -> bytes:  # map entry up to the payload
            int64_list = _field(b"\x0a", b"\0" * n)  # Int64List{1: packed}
            feature = _field(b"\x1a", int64_list)  # Feature{3: Int64List}
            entry = _field(b"\x0a", key + _field(b"\x12", feature))  # Features.feature entry
            return entry[:len(entry) - n]

        parts += [_by_length(keep.sum(axis=1), entry_header), (payload, keep)]
    body = sum(keep.sum(axis=1) for _, keep in parts)  # [E] bytes of Features
    parts.insert(0, _by_length(body, lambda n: _field(b"\x0a", b"\0" * n)[:-n or None]))
    data = np.concatenate([b for b, _ in parts], axis=1)  # [E, W]
    keep = np.concatenate([k for _, k in parts], axis=1)  # [E, W]
    flat = data[keep].tobytes()  # row-major: record by record
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    return [flat[s:e] for s, e in zip([0] + ends[:-1], ends)]
