"""Data builder: example layout, packing statistics, nothing lost, determinism, bad input."""

import gzip
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import CORPUS_WORDS, write_corpus, write_vocab

from electra_tf import tokenization
from electra_tf.data import preprocess


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    return write_vocab(tmp_path_factory.mktemp("vocab"))


def read_examples(pattern):
    files = sorted(tf.io.gfile.glob(pattern))
    out = []
    for f in files:
        for rec in tf.data.TFRecordDataset(f):
            ex = tf.train.Example.FromString(rec.numpy())
            out.append({k: list(ex.features.feature[k].int64_list.value)
                        for k in ("input_ids", "input_mask", "segment_ids")})
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory, vocab):
    d = tmp_path_factory.mktemp("built")
    corpus = write_corpus(d / "corpus.txt", 600)
    info = preprocess.build([str(corpus)], vocab, str(d / "out"),
                            preprocess.BuildOptions(max_seq_length=64, num_shards=3))
    return d, corpus, info, read_examples(str(d / "out" / "pretrain_data.tfrecord-*"))


def test_example_layout(built, vocab):
    _, _, info, examples = built
    assert info["train_examples"] == len(examples) > 500
    for ex in examples:
        ids, mask, seg = (np.array(ex[k]) for k in ("input_ids", "input_mask", "segment_ids"))
        assert len(ids) == len(mask) == len(seg) == 64
        n = mask.sum()
        assert (mask[:n] == 1).all() and (mask[n:] == 0).all()
        assert (ids[n:] == vocab.pad_id).all() and (seg[n:] == 0).all()
        assert ids[0] == vocab.cls_id and ids[n - 1] == vocab.sep_id
        seps = np.flatnonzero(ids[:n] == vocab.sep_id)
        assert len(seps) in (1, 2)
        assert (seg[:seps[0] + 1] == 0).all() and (seg[seps[0] + 1:n] == 1).all()


def test_every_token_once_except_truncations(built, vocab):
    d, corpus, info, examples = built
    words = [w for line in corpus.read_text().splitlines() for w in line.split()]
    ids_in = np.bincount([vocab.id(w) for w in words], minlength=vocab.size)
    specials = set(vocab.never_masked_ids) | {vocab.pad_id}
    flat = [i for ex in examples for i, m in zip(ex["input_ids"], ex["input_mask"])
            if m and i not in specials]
    ids_out = np.bincount(flat, minlength=vocab.size)
    assert (ids_out <= ids_in).all()
    assert ids_in.sum() - ids_out.sum() == info["truncated_tokens"]
    assert info["tokens"] == len(words)


def test_deterministic_across_thread_and_process_counts_and_eval_split(tmp_path, vocab):
    corpus = write_corpus(tmp_path / "c.txt", 300, seed=3)
    opts = dict(max_seq_length=48, num_shards=2, eval_fraction=0.1, lines_per_chunk=40)
    runs = {"1 thread": dict(num_threads=1), "3 threads": dict(num_threads=3),
            "2 processes": dict(num_processes=2)}
    infos = {name: preprocess.build([str(corpus)], vocab, str(tmp_path / str(i)),
                                    preprocess.BuildOptions(**run, **opts))
             for i, (name, run) in enumerate(runs.items())}
    for prefix in ("pretrain_data", "eval_data"):
        got = [read_examples(str(tmp_path / str(i) / f"{prefix}*")) for i in range(len(runs))]
        assert got[0] and got[0] == got[1] == got[2], prefix
    counts = [{k: v for k, v in info.items() if k not in ("seconds", "tokens_per_second",
                                                          "arguments")}
              for info in infos.values()]
    assert counts[0] == counts[1] == counts[2]
    assert 10 < counts[0]["eval_documents"] < 60
    assert counts[0]["eval_shards"] == ["eval_data.tfrecord-00000-of-00001"]


def test_gz_input_and_info_file(tmp_path, vocab):
    plain = write_corpus(tmp_path / "c.txt", 20)
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = preprocess.build([str(plain)], vocab, str(tmp_path / "a"))
    b = preprocess.build([str(gz)], vocab, str(tmp_path / "b"))
    assert read_examples(str(tmp_path / "a/pretrain*")) == read_examples(
        str(tmp_path / "b/pretrain*"))
    info = json.loads((tmp_path / "a" / "dataset_info.json").read_text())
    assert info["documents"] == a["documents"] == b["documents"] == 20
    assert info["vocab"]["sha256"] == vocab.sha256 and info["length_histogram"]


def test_filesystem_paths_read_and_write_like_local_files(tmp_path, vocab):
    """`gs://`-style inputs and outputs go through tf.io.gfile (GFile reads, atomic renames);
    TF's in-memory `ram://` filesystem takes that path here and must give the same shards and
    counts as local files, and the pretraining input must stream them."""
    from electra_tf.data import pipeline

    plain = write_corpus(tmp_path / "c.txt", 60)
    root = f"ram://{tmp_path.name}"
    with tf.io.gfile.GFile(f"{root}/in/a.txt", "wb") as f:
        f.write(plain.read_bytes())
    with tf.io.gfile.GFile(f"{root}/in/b.txt.gz", "wb") as f:
        f.write(gzip.compress(plain.read_bytes()))
    options = preprocess.BuildOptions(max_seq_length=32, num_shards=2, eval_fraction=0.2)
    remote = preprocess.build([f"{root}/in/*"], vocab, f"{root}/out", options)
    local = preprocess.build([str(plain)] * 2, vocab, str(tmp_path / "out"), options)
    for key in ("documents", "tokens", "train_examples", "eval_examples"):
        assert remote[key] == local[key] > 0, key
    assert sorted(tf.io.gfile.listdir(f"{root}/out")) == sorted(
        p.name for p in (tmp_path / "out").iterdir())
    for prefix in ("pretrain", "eval"):
        assert read_examples(f"{root}/out/{prefix}*") == read_examples(
            str(tmp_path / "out" / f"{prefix}*"))
    spec = pipeline.MaskingSpec(0.15, 4, vocab.mask_id, vocab.never_masked_ids)
    batch = next(iter(pipeline.pretraining_dataset(f"{root}/out/pretrain*", 4, 32, spec)))
    assert batch["input_ids"].shape == (4, 32)
    with pytest.raises(preprocess.DataError, match="--overwrite"):
        preprocess.build([f"{root}/in/*"], vocab, f"{root}/out", options)


def test_progress_counts_bytes_on_disk_so_gz_inputs_end_at_100_percent(tmp_path):
    """The progress line divides bytes read by the inputs' size on disk: for a .gz input it
    must count compressed bytes (it counted decompressed ones: '326%  ETA -7 s')."""
    plain = write_corpus(tmp_path / "c.txt", 300)
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    files = [str(gz), str(plain)]
    total = sum(tf.io.gfile.stat(f).length for f in files)
    assert gz.stat().st_size < plain.stat().st_size / 2  # the bug would overshoot 100%
    stats = {"bytes_read": 0, "replaced_chars": 0}
    seen = [stats["bytes_read"] for _ in preprocess.iter_documents(files, False, stats)]
    assert all(a <= b <= total for a, b in zip(seen, seen[1:]))
    assert stats["bytes_read"] == total
    # Within one file read in a single block, progress moves document by document (it sat at
    # 0% until the block's end: '0%  ETA nan' for a whole small corpus).
    stats["bytes_read"] = 0
    seen = [stats["bytes_read"] for _ in preprocess.iter_documents([str(plain)], False, stats)]
    assert 0 < seen[len(seen) // 2] < plain.stat().st_size
    assert len(set(seen)) > len(seen) // 2


def test_non_utf8_replaced_and_counted_or_strict_error(tmp_path, vocab):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"w1 w2 \xff\xfe w3 .\n\nw4 .\n")
    info = preprocess.build([str(bad)], vocab, str(tmp_path / "a"))
    assert info["replaced_non_utf8_chars"] == 2 and info["documents"] == 2
    with pytest.raises(preprocess.DataError, match=r"bad.txt:1: not UTF-8"):
        preprocess.build([str(bad)], vocab, str(tmp_path / "b"),
                         preprocess.BuildOptions(strict=True))
    assert not list((tmp_path / "b").glob("pretrain_data*"))  # nothing half-written


def test_casing_mismatch_and_many_unknowns_are_warned_and_recorded(tmp_path, vocab):
    """The test vocabulary is uncased; building without lower-casing turns the capitalised
    copy of the corpus into [UNK]s: both problems are logged and kept in dataset_info.json."""
    plain = write_corpus(tmp_path / "c.txt", 20)
    capitalised = tmp_path / "C.txt"
    capitalised.write_text(plain.read_text().upper())
    fine = preprocess.build([str(capitalised)], vocab, str(tmp_path / "ok"))
    assert fine["warnings"] == [] and fine["unk_share"] == 0  # lower-cased: every word known
    bad = preprocess.build([str(capitalised)], vocab, str(tmp_path / "bad"),
                           preprocess.BuildOptions(lower_case=False))
    assert bad["unk_share"] > 0.9
    casing, unknown = bad["warnings"]
    assert "looks uncased" in casing and "--do_lower_case" in casing
    assert unknown.startswith(f"{100 * bad['unk_share']:.1f}% of the tokens are [UNK]")
    info = json.loads((tmp_path / "bad" / "dataset_info.json").read_text())
    assert info["warnings"] == bad["warnings"]


def test_long_lines_are_truncated_and_counted(tmp_path, vocab):
    long = tmp_path / "long.txt"
    long.write_text(" ".join(["w5"] * 500) + "\n")
    info = preprocess.build([str(long)], vocab, str(tmp_path / "a"),
                            preprocess.BuildOptions(max_seq_length=32))
    assert info["train_examples"] == 1 and info["truncated_tokens"] == 500 - 30


@pytest.mark.parametrize("content", ["", "\n\n   \n\n"])
def test_empty_corpus_is_an_error_without_outputs(tmp_path, vocab, content):
    empty = tmp_path / "empty.txt"
    empty.write_text(content)
    with pytest.raises(preprocess.DataError, match="empty.txt: no text found"):
        preprocess.build([str(empty)], vocab, str(tmp_path / "out"))
    assert not list((tmp_path / "out").iterdir())


def test_refuses_to_overwrite_and_missing_input(tmp_path, vocab):
    corpus = write_corpus(tmp_path / "c.txt", 5)
    preprocess.build([str(corpus)], vocab, str(tmp_path / "out"))
    with pytest.raises(preprocess.DataError, match="already holds .* pass --overwrite"):
        preprocess.build([str(corpus)], vocab, str(tmp_path / "out"))
    preprocess.build([str(corpus)], vocab, str(tmp_path / "out"),
                     preprocess.BuildOptions(overwrite=True))
    with pytest.raises(preprocess.DataError, match="nope.txt: no such file"):
        preprocess.build([str(tmp_path / "nope.txt")], vocab, str(tmp_path / "o2"))


def test_unwritable_output_dir(tmp_path, vocab):
    corpus = write_corpus(tmp_path / "c.txt", 5)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(preprocess.DataError, match="cannot write there"):
        preprocess.build([str(corpus)], vocab, str(blocker / "out"))


def run_cli(*args):
    return subprocess.run([sys.executable, "build_pretraining_dataset.py", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_bad_vocab_is_one_clear_line(tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", 5)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nw1\n")
    result = run_cli("--input", str(corpus), "--output_dir", str(tmp_path / "o"),
                     "--vocab_file", str(vocab))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("vocab.txt has no [MASK]")


def test_cli_learns_vocab_and_checks_size(tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", 50)
    result = run_cli("--input", str(corpus), "--output_dir", str(tmp_path / "o"),
                     "--learn_vocab_size", "120", "--num_threads", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads((tmp_path / "o" / "dataset_info.json").read_text())
    assert info["arguments"]["num_threads"] == 1
    vocab = tokenization.load_vocab(str(tmp_path / "o" / "vocab.txt"))
    # the first two examples, as text: specials, the corpus' words rejoined from their pieces
    shown = [ln.split(": ", 1)[1] for ln in result.stdout.splitlines()
             if ln.startswith("example ")]
    first = read_examples(str(tmp_path / "o" / "pretrain*"))[:2]
    assert len(shown) == 2 and all(re.fullmatch(r"\[CLS\]( (w\d+|\.|\[SEP\]))+", t)
                                   for t in shown), shown
    for text, example in zip(shown, first):  # pieces rejoined (no '##' left, see above)
        words = text.split()
        assert words.count("[SEP]") in (1, 2) and len(words) <= sum(example["input_mask"])
        assert set(words) - {"[CLS]", "[SEP]"} <= set(CORPUS_WORDS) | {"."}
    assert vocab.tokens[:5] == tokenization.SPECIAL_TOKENS and vocab.size <= 120
    result = run_cli("--input", str(corpus), "--output_dir", str(tmp_path / "o2"),
                     "--vocab_file", str(tmp_path / "o" / "vocab.txt"),
                     "--vocab_size", "999")
    assert result.returncode == 2 and "but the model config's vocab_size is 999" in result.stderr
    result = run_cli("--input", str(corpus), "--output_dir", str(tmp_path / "o3"),
                     "--vocab_file", str(tmp_path / "o" / "vocab.txt"), "--num_threads", "-1")
    assert result.returncode == 2 and "num_threads at least 0" in result.stderr
    assert not (tmp_path / "o3").exists()


def short_documents(path, docs, seed=0):
    """Reviews, posts, entries: documents of 1-2 sentences of 3-11 words."""
    return write_corpus(path, docs, seed, sentences=(1, 2), words=(3, 11))


def test_packing_across_documents_fills_rows_and_keeps_every_token(tmp_path, vocab):
    corpus = short_documents(tmp_path / "c.txt", 500)
    infos, examples = {}, {}
    for across in (False, True):
        out = tmp_path / str(across)
        infos[across] = preprocess.build([str(corpus)], vocab, str(out), preprocess.BuildOptions(
            max_seq_length=64, num_shards=2, pack_across_documents=across))
        examples[across] = read_examples(str(out / "pretrain_data*"))
    for across, exs in examples.items():  # dataset_info's fill is the shards'
        filled = sum(sum(ex["input_mask"]) for ex in exs)
        assert infos[across]["row_fill"] == pytest.approx(filled / (64 * len(exs)), abs=1e-4)
    assert infos[False]["row_fill"] < 0.45 and infos[True]["row_fill"] > 0.85
    assert len(examples[True]) < len(examples[False]) / 2
    # nothing lost but what truncation counts; separators are [SEP]s between documents
    words = [w for line in corpus.read_text().splitlines() for w in line.split()]
    ids_in = np.bincount([vocab.id(w) for w in words], minlength=vocab.size)
    specials = set(vocab.never_masked_ids) | {vocab.pad_id}
    flat = [i for ex in examples[True] for i, m in zip(ex["input_ids"], ex["input_mask"])
            if m and i not in specials]
    ids_out = np.bincount(flat, minlength=vocab.size)
    assert (ids_out <= ids_in).all()
    assert ids_in.sum() - ids_out.sum() == infos[True]["truncated_tokens"]
    assert infos[True]["truncated_tokens"] == 0
    # layout: [CLS] first, [SEP] last, segment 1 only after the first [SEP] (A's end or a
    # document's end inside A), at most one switch from segment 0 to 1
    seps_seen = 0
    for ex in examples[True]:
        ids, mask, seg = (np.array(ex[k]) for k in ("input_ids", "input_mask", "segment_ids"))
        n = mask.sum()
        assert ids[0] == vocab.cls_id and ids[n - 1] == vocab.sep_id and (ids[n:] == 0).all()
        assert (np.diff(seg[:n]) >= 0).all() and (seg[n:] == 0).all()
        if seg[:n].any():
            assert ids[np.argmax(seg[:n]) - 1] == vocab.sep_id
        seps_seen += np.count_nonzero(ids[:n] == vocab.sep_id)
    assert seps_seen > 2 * len(examples[True])  # documents meet inside rows


def test_packing_across_documents_is_deterministic_and_keeps_the_eval_split(tmp_path, vocab):
    corpus = short_documents(tmp_path / "c.txt", 400, seed=1)
    opts = dict(max_seq_length=48, num_shards=2, eval_fraction=0.1, lines_per_chunk=40,
                pack_across_documents=True)
    runs = (dict(num_threads=1), dict(num_threads=3), dict(num_processes=2))
    infos = [preprocess.build([str(corpus)], vocab, str(tmp_path / str(i)),
                              preprocess.BuildOptions(**run, **opts))
             for i, run in enumerate(runs)]
    for prefix in ("pretrain_data", "eval_data"):
        got = [read_examples(str(tmp_path / str(i) / f"{prefix}*")) for i in range(len(runs))]
        assert got[0] and got[0] == got[1] == got[2], prefix
    assert infos[0]["eval_documents"] > 10 and infos[0]["row_fill"] > 0.8
    # held-out documents stay out of the training rows: the same documents as the authors'
    # packing holds out, whose eval rows hold the same tokens
    authors = preprocess.build([str(corpus)], vocab, str(tmp_path / "authors"),
                               preprocess.BuildOptions(**{**opts, "pack_across_documents": False}))
    assert authors["eval_documents"] == infos[0]["eval_documents"]

    def text_ids(pattern):
        specials = set(vocab.never_masked_ids) | {vocab.pad_id}
        return sorted(i for ex in read_examples(pattern) for i, m in
                      zip(ex["input_ids"], ex["input_mask"]) if m and i not in specials)

    assert (text_ids(str(tmp_path / "0" / "eval_data*"))
            == text_ids(str(tmp_path / "authors" / "eval_data*")))


def test_cli_packs_across_documents_and_prints_the_fill(tmp_path):
    corpus = short_documents(tmp_path / "c.txt", 200)
    vocab = write_vocab(tmp_path)
    fills = {}
    for name, extra in (("authors", ()), ("across", ("--pack_across_documents",))):
        result = run_cli("--input", str(corpus), "--output_dir", str(tmp_path / name),
                         "--vocab_file", vocab.path, "--max_seq_length", "64", *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        info = json.loads((tmp_path / name / "dataset_info.json").read_text())
        assert info["arguments"]["pack_across_documents"] == bool(extra)
        assert f"rows {100 * info['row_fill']:.0f}% full" in result.stdout
        fills[name] = info["row_fill"]
    assert fills["across"] > 0.85 > 0.45 > fills["authors"]
