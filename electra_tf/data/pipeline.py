"""The pretraining input: TFRecord shards -> masked, batched, per-replica tf.data.

files -> shard by input pipeline (by file when every pipeline gets one, else by record) ->
shuffle files -> interleave -> shuffle records -> batch(drop_remainder) -> parse (batched) ->
int64 -> int32 -> dynamic masking (seeded by the batch counter) -> prefetch.
Use it through `strategy.distribute_datasets_from_function(lambda ctx: pretraining_dataset(
..., input_context=ctx))`; the batch size given is per replica.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from electra_tf.data import masking
from electra_tf.errors import DataError

if TYPE_CHECKING:
    from electra_tf.config import ElectraConfig
    from electra_tf.tokenization import Vocab

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
# Written by the data builder's --word_segmenter (1 = the token continues the previous one's
# word); read only for whole-word masking.
WORD_FEATURE = "word_continues"


def feature_spec(max_seq_length: int, words: bool = False) -> dict[str, tf.io.FixedLenFeature]:
    spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURE_NAMES}
    if words:  # a shard built without a segmenter reads as "every token a word"
        spec[WORD_FEATURE] = tf.io.FixedLenFeature([max_seq_length], tf.int64,
                                                   default_value=[0] * max_seq_length)
    return spec


def has_word_segments(files: Sequence[str]) -> bool:
    """True when the first file's first record holds the builder's word segmentation."""
    first = next(iter(tf.data.TFRecordDataset(files[:1]).take(1)), None)
    return first is not None and WORD_FEATURE in tf.train.Example.FromString(
        first.numpy()).features.feature


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
    """What dynamic masking needs: from the PretrainConfig and the vocabulary (the keyword
    arguments of `masking.mask_batch`)."""

    mask_prob: float
    num_predictions: int
    mask_id: int
    special_ids: tuple[int, ...]
    mask_token_rate: float = 0.85
    random_token_rate: float = 0.0  # BERT's random-token share (objective "mlm")
    vocab_size: int = 0  # needed when random_token_rate > 0
    whole_word_masking: bool = False
    continuation_ids: tuple[int, ...] = ()  # the vocabulary's "##" pieces (whole words)

    @classmethod
    def from_config(cls, cfg: ElectraConfig, vocab: Vocab) -> MaskingSpec:
        """The run's masking: the recipe's rates, the vocabulary's [MASK] and special ids."""
        pre = cfg.pretrain
        pieces = tuple(i for i, token in enumerate(vocab.tokens) if token.startswith("##"))
        return cls(pre.mask_prob, pre.num_predictions, vocab.mask_id, vocab.never_masked_ids,
                   pre.mask_token_rate, pre.random_token_rate, cfg.model.vocab_size,
                   pre.whole_word_masking, pieces if pre.whole_word_masking else ())


def list_files(patterns: str | Sequence[str]) -> list[str]:
    """Sorted files matching comma-separated or listed patterns; DataError naming the pattern."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p]
    files = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise DataError(f"{pattern}: matches no TFRecord file")
        files.extend(matched)
    return files


def _first_records(files: Sequence[str]) -> dict[str, bytes]:
    """{file: its first record}, read in one parallel tf.data pass (1,000 local shards: 1 s,
    against 32 s for an eager dataset per file: bench/validate_records.py); files with no
    records are absent. Empty if a read fails: the caller then reads file by file to name the
    bad one."""
    ds = tf.data.Dataset.from_tensor_slices(list(files)).interleave(
        lambda f: tf.data.TFRecordDataset(f).take(1).map(lambda r: (f, r)),
        cycle_length=16, num_parallel_calls=16, deterministic=False)
    try:
        return {f.decode(): r for f, r in ds.as_numpy_iterator()}
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
        return {}


def validate_records(files: Sequence[str], max_seq_length: int) -> None:
    """Checks the first record of every file against the schema, naming the file."""
    expected = (f"tf.train.Example with int64 features {', '.join(FEATURE_NAMES)} of length "
                f"{max_seq_length}")
    firsts = _first_records(files)
    for path in files:
        first = firsts.get(path)
        if first is None:  # no records, or the parallel read failed: read this file alone
            try:
                record = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
            except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
                raise DataError(f"{path}: corrupt or truncated TFRecord "
                                f"({e.message.splitlines()[0]}); expected {expected}") from None
            if record is None:
                raise DataError(f"{path}: holds no records; expected {expected}")
            first = record.numpy()
        try:
            example = tf.train.Example.FromString(first)
        except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError
            raise DataError(f"{path}: first record is not a tf.train.Example; expected "
                            f"{expected}") from None
        for name in FEATURE_NAMES:
            feature = example.features.feature.get(name)
            if feature is None or feature.WhichOneof("kind") != "int64_list":
                found = sorted(example.features.feature)
                raise DataError(f"{path}: no int64 feature '{name}' (found {found}); expected "
                                f"{expected}")
            if len(feature.int64_list.value) != max_seq_length:
                raise DataError(f"{path}: '{name}' has length {len(feature.int64_list.value)};"
                                f" expected {max_seq_length} (the --max_seq_length of the data "
                                "builder and of pretraining must agree)")


def find_corrupt_files(files: Sequence[str]) -> list[str]:
    """Reads every record of every file (record checksums are checked) and returns one line per
    file that fails: '<path>: corrupted record at <byte offset>'. TF's own DataLossError names
    no file; a run calls this after one to say which shard to rebuild."""
    bad = []
    for path in files:
        try:  # counted in C++ (tf.data reduce): GB/s, no Python per record
            tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda n, _: n + 1)
        except tf.errors.DataLossError as e:
            found = re.search(r"(corrupted|truncated) record at \d+", e.message)
            bad.append(f"{path}: {found.group(0) if found else e.message.splitlines()[0]}")
    return bad


def pretraining_dataset(patterns: str | Sequence[str], batch_size: int, max_seq_length: int,
                        masking_spec: MaskingSpec, *, seed: int = 0, training: bool = True,
                        deterministic: bool = False, shuffle_buffer: int = 10_000,
                        input_context: tf.distribute.InputContext | None = None,
                        validate: bool = True) -> tf.data.Dataset:
    """The masked pretraining batches of one input pipeline (see the module docstring).

    Args:
      batch_size: per-replica batch size (what one replica's step consumes).
      training: shuffle and repeat forever; else files and records in order, one pass.
      deterministic: fixed order whatever the parallelism (tests, exact resumption).
      validate: check every file's first record (validate_records); False when the caller
        already did, as a run does once for all its input pipelines.
    """
    files = list_files(patterns)
    if validate:
        validate_records(files, max_seq_length)
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    by_file = pipelines > 1 and len(files) >= pipelines
    ds = tf.data.Dataset.from_tensor_slices(files)
    if by_file:
        ds = ds.shard(pipelines, pipeline_id)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    by_record = pipelines > 1 and not by_file
    # Sharding by record takes every k-th record of one order that every pipeline must agree
    # on: a non-deterministic interleave (records in whichever order reads finish) would let
    # two hosts take the same record and skip another, so it is deterministic then.
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(8, len(files)),
                       num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=deterministic or by_record)
    if by_record:
        ds = ds.shard(pipelines, pipeline_id)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    spec = feature_spec(max_seq_length, masking_spec.whole_word_masking
                        and has_word_segments(files))

    def parse_and_mask(index, records):
        parsed = tf.io.parse_example(records, spec)  # batched parse: ~5x faster than per record
        batch = {k: tf.cast(v, tf.int32) for k, v in parsed.items()}
        seed_pair = masking.batch_seed(seed, index * pipelines + pipeline_id)
        # MaskingSpec's fields are mask_batch's keyword arguments, name for name
        return masking.mask_batch(batch, seed_pair, **dataclasses.asdict(masking_spec))

    ds = ds.enumerate().map(parse_and_mask, num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=deterministic)
    options = tf.data.Options()
    options.deterministic = deterministic
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
