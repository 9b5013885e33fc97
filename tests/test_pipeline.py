"""Pretraining input pipeline: batches, per-host sharding, resumption, schema checks."""

import re

import numpy as np
import pytest
import tensorflow as tf
from helpers import write_corpus, write_vocab

from electra_tf.data import pipeline, preprocess, records

L = 32


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    vocab = write_vocab(d)
    corpus = write_corpus(d / "c.txt", 200)
    for n in (1, 4):
        preprocess.build([str(corpus)], vocab, str(d / f"s{n}"),
                         preprocess.BuildOptions(max_seq_length=L, num_shards=n))
    spec = pipeline.MaskingSpec(0.15, 5, vocab.mask_id, vocab.never_masked_ids)
    return d, vocab, spec


def original_rows(ds):
    """Each example's original ids (masked positions restored), as tuples."""
    rows = []
    for b in ds:
        ids = b["input_ids"].numpy().copy()
        for i in range(len(ids)):
            live = b["masked_lm_weights"].numpy()[i] > 0
            ids[i, b["masked_lm_positions"].numpy()[i][live]] = b["masked_lm_ids"].numpy()[i][
                live]
            rows.append(tuple(ids[i]))
    return rows


def test_batches_are_masked_with_fixed_shapes(shards):
    d, vocab, spec = shards
    ds = pipeline.pretraining_dataset(str(d / "s4" / "pretrain*"), 8, L, spec, seed=1)
    batch = next(iter(ds))
    assert batch["input_ids"].shape == (8, L) and batch["input_ids"].dtype == tf.int32
    assert batch["masked_lm_positions"].shape == (8, 5)
    assert (batch["input_ids"].numpy() == vocab.mask_id).any()


def test_shards_in_the_official_and_nvidia_layout_are_read(shards, tmp_path):
    """The authors' builder and NVIDIA's TF2 copy of it write the same records: one
    tf.train.Example of three int64 features, unpadded file names pretrain_data.tfrecord-<i>-of-<n>;
    rows shorter than L (NVIDIA: 5% get a random target length) padded with 0."""
    _, vocab, spec = shards
    rng = np.random.default_rng(0)
    written = []
    for i in range(3):
        with tf.io.TFRecordWriter(str(tmp_path / f"pretrain_data.tfrecord-{i}-of-3")) as w:
            for _ in range(6):
                a, b = int(rng.integers(3, 12)), int(rng.integers(0, 12))
                ids = [vocab.cls_id, *rng.integers(10, vocab.size, a), vocab.sep_id]
                segments = [0] * len(ids)
                if b:
                    ids += [*rng.integers(10, vocab.size, b), vocab.sep_id]
                    segments += [1] * (b + 1)
                pad = L - len(ids)
                row = {"input_ids": ids + [0] * pad, "input_mask": [1] * len(ids) + [0] * pad,
                       "segment_ids": segments + [0] * pad}
                feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                           for k, v in row.items()}
                w.write(tf.train.Example(features=tf.train.Features(feature=feature))
                        .SerializeToString())
                written.append(tuple(row["input_ids"]))
    ds = pipeline.pretraining_dataset(str(tmp_path / "pretrain_data*"), 6, L, spec, seed=0,
                                      training=False)
    assert sorted(original_rows(ds)) == sorted(written)


def interleave_determinism(ds) -> set[str]:
    """The `deterministic` attribute of every parallel interleave in the dataset's graph."""
    graph = tf.compat.v1.GraphDef.FromString(ds._as_serialized_graph().numpy())
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {n.attr["deterministic"].s.decode() for n in nodes if "Interleave" in n.op}


# by record (one file), by file, by record over 4 files read in parallel
@pytest.mark.parametrize("num_shards,pipelines", [(1, 2), (4, 2), (4, 8)])
def test_per_host_sharding_covers_every_record_once(shards, num_shards, pipelines):
    """Sharding by record takes every k-th record of an order all hosts must agree on, so the
    parallel file interleave is deterministic then (even with deterministic=False, the
    default); by file, each host reads its own files in any order."""
    d, _, spec = shards
    pattern = str(d / f"s{num_shards}" / "pretrain*")
    whole = original_rows(pipeline.pretraining_dataset(pattern, 1, L, spec, training=False))
    parts, modes = [], set()
    for host in range(pipelines):
        ctx = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=host,
                                         num_replicas_in_sync=pipelines)
        ds = pipeline.pretraining_dataset(pattern, 1, L, spec, training=False, input_context=ctx)
        modes |= interleave_determinism(ds)
        parts += original_rows(ds)
    assert sorted(parts) == sorted(whole) and len(whole) > 100
    by_record = num_shards < pipelines
    assert modes == {"true" if by_record else "false"}


def test_deterministic_and_iterator_checkpoint_resumes_at_same_record(shards, tmp_path):
    d, _, spec = shards
    make = lambda: pipeline.pretraining_dataset(  # noqa: E731
        str(d / "s4" / "pretrain*"), 4, L, spec, seed=5, deterministic=True)
    a, b = iter(make()), iter(make())
    for _ in range(3):
        x, y = next(a), next(b)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    ckpt = tf.train.Checkpoint(iterator=a)
    path = ckpt.save(str(tmp_path / "it"))
    expected = [next(a) for _ in range(3)]
    fresh = iter(make())
    tf.train.Checkpoint(iterator=fresh).restore(path)
    for want in expected:
        got = next(fresh)
        for k in want:
            np.testing.assert_array_equal(want[k], got[k])


def write_records(path, examples):
    with tf.io.TFRecordWriter(str(path)) as w:
        for feats in examples:
            w.write(records.encode_examples({k: np.array([v]) for k, v in feats.items()})[0])


def test_schema_errors_name_the_file(shards, tmp_path):
    _, _, spec = shards
    good = {"input_ids": [1] * L, "input_mask": [1] * L, "segment_ids": [0] * L}
    write_records(tmp_path / "short.tfrecord", [{k: v[:16] for k, v in good.items()}])
    with pytest.raises(preprocess.DataError, match=r"short.tfrecord: 'input_ids' has length 16;"
                       r" expected 32"):
        pipeline.pretraining_dataset(str(tmp_path / "short.tfrecord"), 2, L, spec)
    write_records(tmp_path / "names.tfrecord", [{"input_word_ids": [1] * L}])
    with pytest.raises(preprocess.DataError, match=r"names.tfrecord: no int64 feature "
                       r"'input_ids' \(found \['input_word_ids'\]\)"):
        pipeline.pretraining_dataset(str(tmp_path / "names.tfrecord"), 2, L, spec)
    write_records(tmp_path / "ok.tfrecord", [good] * 3)
    data = (tmp_path / "ok.tfrecord").read_bytes()
    (tmp_path / "cut.tfrecord").write_bytes(data[:20])
    with pytest.raises(preprocess.DataError, match=r"cut.tfrecord: corrupt or truncated"):
        pipeline.pretraining_dataset(str(tmp_path / "cut.tfrecord"), 2, L, spec)
    with pytest.raises(preprocess.DataError, match=r"missing-\*: matches no TFRecord file"):
        pipeline.pretraining_dataset(str(tmp_path / "missing-*"), 2, L, spec)
    # every file's first record is checked, not only the first few files'
    many = tmp_path / "many"
    many.mkdir()
    for i in range(40):
        write_records(many / f"part-{i:02d}", [good] * 2)
    pipeline.validate_records(sorted(str(p) for p in many.iterdir()), L)
    write_records(many / "part-37", [{k: v[:16] for k, v in good.items()}])
    (many / "part-23").write_bytes(b"")
    with pytest.raises(preprocess.DataError, match=r"part-23: holds no records"):
        pipeline.pretraining_dataset(str(many / "part-*"), 2, L, spec)
    (many / "part-23").write_bytes(data)
    with pytest.raises(preprocess.DataError, match=r"part-37: 'input_ids' has length 16"):
        pipeline.pretraining_dataset(str(many / "part-*"), 2, L, spec)
    (many / "part-31").write_bytes(data[:20])  # a failed parallel read: found file by file
    with pytest.raises(preprocess.DataError, match=r"part-31: corrupt or truncated"):
        pipeline.pretraining_dataset(str(many / "part-*"), 2, L, spec)


def test_corrupt_records_past_the_first_are_found_and_named(shards, tmp_path):
    """Only the first record of a shard is checked up front; a bad record later fails inside
    tf.data with 'corrupted record at N' and no file name: find_corrupt_files names it."""
    d, _, spec = shards
    files = sorted((d / "s4").glob("pretrain*"))
    copies = []
    for f in files:
        copies.append(tmp_path / f.name)
        copies[-1].write_bytes(f.read_bytes())
    flipped = bytearray(copies[2].read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF  # inside a record's payload: its checksum fails
    copies[2].write_bytes(bytes(flipped))
    copies[3].write_bytes(copies[3].read_bytes()[:-7])  # truncated mid-record
    pattern = str(tmp_path / "pretrain*")
    with pytest.raises(tf.errors.DataLossError):  # passes the up-front check, fails when read
        for _ in pipeline.pretraining_dataset(pattern, 4, L, spec, training=False):
            pass
    bad = pipeline.find_corrupt_files([str(c) for c in copies])
    assert [line.split(": ")[0] for line in bad] == [str(copies[2]), str(copies[3])]
    assert re.search(r": corrupted record at \d+$", bad[0]), bad[0]
    assert re.search(r": (truncated|corrupted) record at \d+$", bad[1]), bad[1]
