"""Text -> pretraining TFRecords: the official sentence packing (or rows packed across documents),
sharded, parallel, atomic.

Input: UTF-8 text files (plain or .gz, local or gs://), one sentence or paragraph per line,
a blank line between documents. Output, in `output_dir`:
  pretrain_data.tfrecord-<i>-of-<n>       training shards (tf.train.Example)
  eval_data.tfrecord-<i>-of-<m>           held-out shards (whole documents), if eval_fraction
  dataset_info.json                       counts, token statistics, vocab hash, arguments
Features, int64 [max_seq_length]: input_ids ([CLS] A [SEP] B [SEP] + padding), input_mask,
segment_ids: the names of the official and NVIDIA builders, so records are interchangeable;
with a word segmenter also word_continues (electra_tf/data/segmentation.py), which only
whole-word masking reads.

Packing: by default the official algorithm, which closes a row at every document's end (on a
corpus of short documents, half of the positions are padding); with pack_across_documents, a
chunk's documents are joined with [SEP] between them and cut into full rows
(packing.join_documents, packing.pack_stream): nothing truncated, held-out documents joined
apart from the training ones. dataset_info.json records the rows' fill (`row_fill`) either way.

Pipeline: read (main thread) -> tokenize (tensorflow-text) -> pack (electra_tf/data/packing.py,
compiled) -> serialize (electra_tf/data/records.py) -> write (main
thread). Chunks of whole documents go to a pool of threads (or,
with num_processes > 1, of processes) and come back in order, so the output is the same for any
thread or process count.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf.atomic import write_atomic
from electra_tf.data import packing, records, segmentation
from electra_tf.errors import DataError
from electra_tf.tokenization import Vocab, WordPieceTokenizer, casing_mismatch

TRAIN_PREFIX = "pretrain_data.tfrecord"
EVAL_PREFIX = "eval_data.tfrecord"
INFO_FILE = "dataset_info.json"
BYTES_PER_SHARD = 16 << 20  # input text per shard when the shard count is automatic
UNK_WARNING = 0.01  # a share of [UNK] tokens above this is worth a warning
_MASK64 = (1 << 64) - 1  # seeds wrap to uint64, the packing generator's state


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    max_seq_length: int = 128
    num_shards: int = 0  # 0 = sized to the corpus
    num_processes: int = 1
    num_threads: int = 0  # threads of the one-process build; 0 = one per core, at most 8
    seed: int = 0
    eval_fraction: float = 0.0
    lower_case: bool = True
    strict: bool = False  # non-UTF-8 input: error instead of replacement
    overwrite: bool = False
    lines_per_chunk: int = 4096  # work unit of a process (whole documents, about this many lines)
    # Rows filled across document boundaries ([SEP] between documents) instead of closed at
    # each document's end, as the authors' builder does (see packing.join_documents).
    pack_across_documents: bool = False
    # "jieba": also write `word_continues` (Chinese word boundaries) for whole-word masking
    word_segmenter: str = ""


# --- reading ------------------------------------------------------------------------------------

def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Files matching the patterns (globs allowed), sorted; DataError if one matches nothing."""
    files = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise DataError(f"{pattern}: no such file (expected text files or globs)")
        files.extend(m for m in matched if not tf.io.gfile.isdir(m))
    return files


def _decode(raw: bytes, path: str, line_no: int, strict: bool) -> tuple[str, int]:
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError as e:
        if strict:
            raise DataError(f"{path}:{line_no}: not UTF-8 ({e.reason} at byte {e.start}); "
                            "drop --strict to replace bad bytes") from None
        text = raw.decode("utf-8", errors="replace")
        return text, text.count("\ufffd") - raw.decode("utf-8", "ignore").count("\ufffd")


def _decode_lines(lines: list[bytes], path: str, first_line: int, strict: bool,
                  stats: dict) -> list[str]:
    """A block of raw lines -> stripped text lines (one decode call when the block is clean)."""
    try:
        return [t.strip() for t in b"".join(lines).decode("utf-8").split("\n")[:len(lines)]]
    except UnicodeDecodeError:
        out = []
        for offset, line in enumerate(lines):
            text, bad = _decode(line, path, first_line + offset, strict)
            stats["replaced_chars"] += bad
            out.append(text.strip())
        return out


def iter_documents(files: Sequence[str], strict: bool, stats: dict) -> Iterator[list[str]]:
    """Yields documents (lists of non-empty lines) across files; a file end ends a document."""
    import gzip

    finished = 0  # bytes of the files already read (on disk: compressed for .gz)
    for path in files:
        doc: list[str] = []
        local = "://" not in path  # Python's reader is ~5x faster than GFile for local files
        with (open(path, "rb") if local else tf.io.gfile.GFile(path, "rb")) as raw:
            stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
            line_no, before = 1, 0
            while block := list(itertools.islice(stream, 65536)):  # GFile too
                after = raw.tell()  # progress in file bytes, as stat() counts them (.gz too)
                texts = _decode_lines(block, path, line_no, strict, stats)
                for i, text in enumerate(texts):
                    if text:
                        doc.append(text)
                    elif doc:
                        # Pro rata within the block: a corpus of one block moves off 0% too.
                        stats["bytes_read"] = finished + before + (after - before) * i // len(texts)
                        yield doc
                        doc = []
                line_no += len(block)
                before = after
                stats["bytes_read"] = finished + after
        finished += tf.io.gfile.stat(path).length
        if doc:
            yield doc


# --- workers --------------------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(vocab: Vocab, options: BuildOptions) -> None:
    _WORKER["tokenizer"] = WordPieceTokenizer(vocab, options.lower_case)
    _WORKER["options"] = options


def _process_chunk(chunk: tuple[int, list[list[str]]]) -> dict:
    """Tokenizes, packs and encodes a chunk of documents (first document index, documents).

    Returns the serialized records in document order, the writer (shard) of each record, their
    lengths, and the chunk's counts for dataset_info.json. Tokenizing runs TF kernels and
    packing/encoding nogil kernels, so the pool's threads work in parallel.
    """
    first_index, docs = chunk
    opt: BuildOptions = _WORKER["options"]
    tokenizer: WordPieceTokenizer = _WORKER["tokenizer"]
    vocab = tokenizer.vocab
    lines = [line for doc in docs for line in doc]
    ids, splits = np.zeros(0, np.int32), np.zeros(1, np.int64)  # [tokens], [lines + 1]
    if lines:
        ragged = tokenizer.tokenize(tf.constant(lines))  # [lines, (pieces)]
        ids = ragged.flat_values.numpy().astype(np.int32)
        splits = ragged.row_splits.numpy().astype(np.int64)
    doc_splits = np.cumsum([0] + [len(doc) for doc in docs], dtype=np.int64)  # [docs + 1]
    packed = ids  # what packing copies into the rows
    if opt.word_segmenter:
        continues = segmentation.word_continues(tokenizer, lines, ids, splits,
                                                opt.word_segmenter)
        packed = segmentation.with_flag(ids, continues)
    seed = np.uint64(opt.seed & _MASK64)
    held_out = np.zeros(len(docs), bool)  # [docs]
    if opt.eval_fraction > 0:
        held_out = packing.document_uniforms(seed, first_index, len(docs), 1) < opt.eval_fraction
    if opt.pack_across_documents:
        rows, writer = _pack_across(packed, splits, doc_splits, held_out, first_index, seed,
                                    opt, vocab)
        (input_ids, lengths, first_ends), dropped = rows, 0  # pack_stream truncates nothing
        evals = int(np.count_nonzero(writer >= opt.num_shards))
    else:
        input_ids, lengths, first_ends, example_docs, dropped = packing.pack_documents(
            packed, splits, doc_splits, first_index, seed, opt.max_seq_length, vocab.cls_id,
            vocab.sep_id, vocab.pad_id)
        example_held_out = held_out[example_docs - first_index]  # [E]
        writer = np.where(example_held_out,
                          opt.num_shards + example_docs % max(1, _num_eval_shards(opt)),
                          example_docs % opt.num_shards)
        evals = int(np.count_nonzero(example_held_out))
    if opt.word_segmenter:
        input_ids, word_continues = segmentation.split_flag(input_ids)
    features = packing.features(input_ids, lengths, first_ends)
    if opt.word_segmenter:
        features["word_continues"] = word_continues.astype(np.int64)
    return {"records": records.encode_examples(features), "writer": writer.tolist(),
            "lengths": lengths,
            "counts": {"documents": len(docs), "sentences": len(lines), "tokens": len(ids),
                       "unk_tokens": int(np.count_nonzero(ids == vocab.unk_id)),
                       "truncated_tokens": int(dropped), "filled_positions": int(lengths.sum()),
                       "train_examples": len(lengths) - evals, "eval_examples": evals,
                       "eval_documents": int(np.count_nonzero(held_out))}}


def _pack_across(ids, splits, doc_splits, held_out, first_index, seed, opt: BuildOptions,
                 vocab: Vocab):
    """The chunk's training documents, then its held-out ones, each group joined into one
    stream (packing.join_documents) and cut into full rows (packing.pack_stream). Returns
    ((input_ids, lengths, first_ends), the writer (shard) of each row). Rows are spread over
    the shards by their index from the chunk's first document, so the output does not depend
    on how many threads or processes built it. A chunk holds at least one document, so at
    least one group is packed."""
    parts, writers = [], []
    for group, shards, offset in ((~held_out, opt.num_shards, 0),
                                  (held_out, _num_eval_shards(opt), opt.num_shards)):
        if not group.any():
            continue
        joined_ids, joined_splits = packing.join_documents(ids, splits, doc_splits, group,
                                                           vocab.sep_id)
        rng = np.random.default_rng([int(seed), first_index, offset])
        parts.append(packing.pack_stream(joined_ids, joined_splits, opt.max_seq_length,
                                         vocab.cls_id, vocab.sep_id, vocab.pad_id, rng))
        writers.append(offset + (first_index + np.arange(len(parts[-1][1]))) % shards)
    rows = tuple(np.concatenate(column) for column in zip(*parts))
    return rows, np.concatenate(writers)


def _chunks(documents: Iterator[list[str]], lines: int) -> Iterator[tuple[int, list]]:
    """Groups whole documents into chunks of about `lines` lines: (first doc index, docs)."""
    chunk, start, index, count = [], 0, 0, 0
    for doc in documents:
        chunk.append(doc)
        index += 1
        count += len(doc)
        if count >= lines:
            yield start, chunk
            chunk, start, count = [], index, 0
    if chunk:
        yield start, chunk


# --- the build ------------------------------------------------------------------------------------

def _num_eval_shards(options: BuildOptions) -> int:
    return max(1, round(options.num_shards * options.eval_fraction)) if options.eval_fraction else 0


def shard_names(output_dir: str, prefix: str, count: int) -> list[str]:
    return [f"{output_dir}/{prefix}-{i:05d}-of-{count:05d}" for i in range(count)]


def build(inputs: Sequence[str], vocab: Vocab, output_dir: str,
          options: BuildOptions = BuildOptions()) -> dict:
    """Builds the shards and dataset_info.json; returns the info dict. See the module doc."""
    _check_options(options)
    files = expand_inputs(inputs)
    warnings: list[str] = []  # logged when found, kept in dataset_info.json

    def warn(message: str) -> None:
        warnings.append(message)
        logging.warning(message)

    if casing := casing_mismatch(vocab, options.lower_case):
        warn(casing)
    total_bytes = sum(tf.io.gfile.stat(f).length for f in files)
    num_shards = options.num_shards or max(1, min(1000, -(-total_bytes // BYTES_PER_SHARD)))
    options = dataclasses.replace(options, num_shards=num_shards)
    num_eval = _num_eval_shards(options)
    _prepare_output_dir(output_dir, options.overwrite)
    train_names = shard_names(output_dir, TRAIN_PREFIX, num_shards)
    eval_names = shard_names(output_dir, EVAL_PREFIX, num_eval)
    stats = {"bytes_read": 0, "replaced_chars": 0}
    start = time.time()
    counts, hist = _write_shards(files, vocab, options, stats, train_names + eval_names,
                                 total_bytes)
    elapsed = time.time() - start
    unk_share = counts["unk_tokens"] / max(1, counts["tokens"])
    if unk_share > UNK_WARNING:
        warn(f"{100 * unk_share:.1f}% of the tokens are [UNK]: is {vocab.path} the vocabulary "
             f"for this text (and lower_case={options.lower_case} its casing)?")
    rows = counts["train_examples"] + counts["eval_examples"]
    info = {
        **counts,
        # share of the rows' positions holding a token ([CLS], [SEP]s included), not padding
        "row_fill": round(counts["filled_positions"] / max(1, rows * options.max_seq_length), 4),
        "unk_share": unk_share,
        "replaced_non_utf8_chars": stats["replaced_chars"],
        "input_bytes": total_bytes,
        "length_histogram": {f"{16 * i}-{16 * i + 15}": int(c) for i, c in enumerate(hist)
                             if c},
        "train_shards": [n.rsplit("/", 1)[-1] for n in train_names],
        "eval_shards": [n.rsplit("/", 1)[-1] for n in eval_names],
        "vocab": {"path": vocab.path, "size": vocab.size, "sha256": vocab.sha256},
        "arguments": {"inputs": list(files), **dataclasses.asdict(options)},
        "seconds": round(elapsed, 2),
        "tokens_per_second": round(counts["tokens"] / max(elapsed, 1e-9)),
        "warnings": warnings,
    }
    write_atomic(f"{output_dir}/{INFO_FILE}", json.dumps(info, indent=2).encode("utf-8"))
    logging.info("wrote %d train and %d eval examples in %d + %d shards to %s (%.1f s); rows "
                 "%.0f%% full (%s)", counts["train_examples"], counts["eval_examples"],
                 num_shards, num_eval, output_dir, elapsed, 100 * info["row_fill"],
                 "packed across documents" if options.pack_across_documents
                 else "closed at each document's end, as the authors' builder")
    return info


def _check_options(options: BuildOptions) -> None:
    if options.max_seq_length < 8:
        raise DataError(f"max_seq_length must be at least 8, got {options.max_seq_length}")
    if not 0.0 <= options.eval_fraction < 1.0:
        raise DataError(f"eval_fraction must be in [0, 1), got {options.eval_fraction}")
    if options.num_processes < 1 or options.num_threads < 0:
        raise DataError(f"num_processes must be at least 1 and num_threads at least 0 (one per "
                        f"core), got {options.num_processes} and {options.num_threads}")
    if options.word_segmenter not in segmentation.SEGMENTERS:
        raise DataError(f"word_segmenter {options.word_segmenter!r}: expected one of "
                        f"{segmentation.SEGMENTERS[1:]} (or none)")


def _write_shards(files: list[str], vocab: Vocab, options: BuildOptions, stats: dict,
                  names: list[str], total_bytes: int) -> tuple[dict, np.ndarray]:
    """Writes every example into its shard (train shards, then eval shards, `names`) under a
    temporary name, renamed when all went well; (counts, row-length histogram by 16)."""
    temps = [f"{name}.incomplete" for name in names]
    counts = {"documents": 0, "sentences": 0, "tokens": 0, "unk_tokens": 0,
              "truncated_tokens": 0, "filled_positions": 0, "train_examples": 0,
              "eval_examples": 0, "eval_documents": 0}
    hist = np.zeros(options.max_seq_length // 16 + 1, np.int64)
    writers = [tf.io.TFRecordWriter(t) for t in temps]
    start = last_log = time.time()
    try:
        for result in _run(files, vocab, options, stats):
            for record, shard in zip(result["records"], result["writer"]):
                writers[shard].write(record)
            for key, value in result["counts"].items():
                counts[key] += value
            hist += np.bincount(result["lengths"] // 16, minlength=len(hist))
            if time.time() - last_log > 10:
                last_log = time.time()
                _log_progress(counts, stats, total_bytes, last_log - start)
        for w in writers:
            w.close()
        if counts["documents"] == 0:
            raise DataError(f"{', '.join(files)}: no text found (empty files or only blank "
                            "lines); expected one sentence per line, blank lines between "
                            "documents")
        for temp, name in zip(temps, names):
            tf.io.gfile.rename(temp, name, overwrite=True)
    except BaseException:
        for w in writers:
            w.close()
        for temp in temps:
            if tf.io.gfile.exists(temp):
                tf.io.gfile.remove(temp)
        raise
    return counts, hist


def example_texts(output_dir: str, vocab: Vocab, count: int = 2) -> list[str]:
    """The first `count` training examples as text ('[CLS] a b [SEP] c d [SEP]', WordPiece
    pieces joined, padding left out): what the model will read, for a glance at casing,
    [UNK]s and packing right after a build. With a word segmenter, tokens are spaced by word
    ('[CLS] 配置 不错 ...'), the units whole-word masking draws."""
    files = sorted(tf.io.gfile.glob(f"{output_dir}/{TRAIN_PREFIX}-*"))
    texts = []
    for record in tf.data.TFRecordDataset(files[:1]).take(count):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        ids, mask = feature["input_ids"].int64_list.value, feature["input_mask"].int64_list.value
        continues = (feature["word_continues"].int64_list.value if "word_continues" in feature
                     else [vocab.tokens[i].startswith("##") for i in ids])
        texts.append("".join(vocab.tokens[i].removeprefix("##") if c else " " + vocab.tokens[i]
                             for i, m, c in zip(ids, mask, continues) if m).strip())
    return texts


def worker_count(options: BuildOptions) -> int:
    """Chunks processed at once: the processes, or one process's threads (default: a thread
    per core, at most 8)."""
    if options.num_processes > 1:
        return options.num_processes
    return options.num_threads or max(1, min(8, os.cpu_count() or 1))


def _run(files, vocab, options, stats) -> Iterator[dict]:
    """Processed chunks in corpus order (so the shards do not depend on the parallelism).

    One process: a thread pool tokenizes (TF kernels), packs and encodes (nogil kernels) whole
    chunks while this thread reads and writes. More: spawned processes (TF is not fork-safe),
    whose crash raises BrokenProcessPool here instead of hanging the build."""
    chunks = _chunks(iter_documents(files, options.strict, stats), options.lines_per_chunk)
    workers = worker_count(options)
    if options.num_processes <= 1:
        _init_worker(vocab, options)
        pool = concurrent.futures.ThreadPoolExecutor(workers)
    else:
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(vocab, options))
    with pool:
        pending: collections.deque = collections.deque()  # at most workers + 1 chunks in flight
        for chunk in chunks:
            pending.append(pool.submit(_process_chunk, chunk))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    try:
        tf.io.gfile.makedirs(output_dir)
        probe = f"{output_dir}/.write-test"
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        raise DataError(f"{output_dir}: cannot write there ({type(e).__name__}: "
                        f"{getattr(e, 'message', e)})") from None
    existing = [n for n in tf.io.gfile.listdir(output_dir)
                if n.startswith((TRAIN_PREFIX, EVAL_PREFIX)) or n == INFO_FILE]
    if existing and not overwrite:
        raise DataError(f"{output_dir}: already holds {len(existing)} dataset files (e.g. "
                        f"{sorted(existing)[0]}); pass --overwrite to replace them")
    for name in existing:
        tf.io.gfile.remove(f"{output_dir}/{name}")


def _log_progress(counts: dict, stats: dict, total_bytes: int, elapsed: float) -> None:
    done = stats["bytes_read"] / max(1, total_bytes)
    eta = f"{elapsed * (1 - done) / done:.0f} s" if done > 0 else "unknown"
    logging.info("%.0f%%  %d documents (%.0f/s)  %d tokens (%.0f/s)  ETA %s", 100 * done,
                 counts["documents"], counts["documents"] / elapsed, counts["tokens"],
                 counts["tokens"] / elapsed, eta)
