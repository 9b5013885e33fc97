"""Benchmark: serving a classifier on raw text, tokenizer included, at the Small size.

Ours: the exported SavedModel's `serving_default` signature (tensorflow-text tokenization,
packing to L=128, ELECTRA-Small encoder, classification head, softmax and label names), called
in-process after `tf.saved_model.load`; exported as is, and with `jit_compile` (the model part
compiled by XLA). Peer: transformers' PyTorch `pipeline`
("text-classification") with a BertTokenizerFast built from the same vocab file and an
ElectraForSequenceClassification of the same size (random weights for both: speed does not
depend on them), truncation to 128. The texts are corpus paragraphs longer than 128 pieces,
so both run full L=128 sequences. Runs alternate between the two (blocks of calls, a pause
between blocks so neither's spinning threads steal the other's cores); medians of the blocks.

    .venv/bin/python bench/serving.py   # writes bench/results/serving.{json,md}
    .venv/bin/python bench/serving.py --threads 1   # serving_1threads.*: less sensitive to
                                                    # other processes on a shared machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import electra_tf  # noqa: E402, F401  (before TF: sets its oneDNN option)  # isort: skip
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf import export, tokenization  # noqa: E402
from electra_tf.config import get_config  # noqa: E402
from electra_tf.heads import build_task_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
LABELS = ["negative", "positive"]
NAMES = {"ours": "electra-tf SavedModel serving_default (tf-text)",
         "ours_xla": "electra-tf SavedModel serving_default (tf-text), --jit_compile",
         "peer": "transformers pipeline (BertTokenizerFast + PyTorch)"}  # the peer last


def paragraphs(count: int, min_words: int = 160) -> list[str]:
    """Corpus paragraphs of at least min_words words (> 128 WordPiece pieces)."""
    lines = list(tokenization.read_lines(os.path.join(SHARED, "corpus", "web.txt")))
    out, current = [], []
    for line in lines:
        current += line.split()
        if len(current) >= min_words:
            out.append(" ".join(current[:min_words + 40]))
            current = []
        if len(out) == count:
            break
    return out


def timed_block(fn, calls: int) -> tuple[float, float]:
    """Median (wall seconds, process CPU seconds) per call over a block of calls. CPU time
    (all threads of this process) is the work done, less skewed by other processes than wall
    time; with several threads it also counts spin-waiting."""
    walls, cpus = [], []
    for _ in range(calls):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--blocks", type=int, default=5, help="alternating blocks per system")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default=None, help="default: bench/results/serving[_<n>threads]")
    a = p.parse_args()
    a.out = a.out or os.path.join(ROOT, "bench", "results", "serving" + (
        "" if a.threads == os.cpu_count() else f"_{a.threads}threads"))
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)

    import torch
    import transformers

    torch.set_num_threads(a.threads)
    vocab_path = os.path.join(SHARED, "vocab", "bert-base-uncased.txt")
    vocab = tokenization.load_vocab(vocab_path)
    cfg = get_config("small").model
    texts = paragraphs(32)

    keras_model = build_task_model(cfg, "classification", len(LABELS))
    servings, info = {}, {}
    for jit in (False, True):
        path = os.path.join(tempfile.mkdtemp(prefix="serving_bench_"), "sst")
        t = time.perf_counter()
        export.export(keras_model, vocab, path, a.seq, label_names=LABELS, jit_compile=jit)
        info[f"export_seconds{'_xla' if jit else ''}"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        servings[jit] = tf.saved_model.load(path).signatures["serving_default"]
        info[f"load_seconds{'_xla' if jit else ''}"] = round(time.perf_counter() - t, 2)

    tokenizer = transformers.BertTokenizerFast(vocab_file=vocab_path, do_lower_case=True)
    hf_config = transformers.ElectraConfig(
        vocab_size=cfg.vocab_size, embedding_size=cfg.embedding_size,
        hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
        num_labels=len(LABELS), id2label=dict(enumerate(LABELS)))
    hf_model = transformers.ElectraForSequenceClassification(hf_config).eval()
    pipe = transformers.pipeline("text-classification", model=hf_model, tokenizer=tokenizer,
                                 device=-1)
    pieces = [len(x) for x in tokenizer(texts)["input_ids"]]
    assert min(pieces) > a.seq, f"texts must exceed L={a.seq} pieces, shortest {min(pieces)}"

    records = []
    load_before = os.getloadavg()[0]  # other processes on a shared machine skew wall times
    for batch in (int(b) for b in a.batches.split(",")):
        inputs = texts[:batch]
        systems = {
            "ours": lambda inputs=inputs: servings[False](
                text=tf.constant(inputs))["probabilities"].numpy(),
            "ours_xla": lambda inputs=inputs: servings[True](
                text=tf.constant(inputs))["probabilities"].numpy(),
            "peer": lambda inputs=inputs, batch=batch: pipe(
                inputs, batch_size=batch, truncation=True, max_length=a.seq)}
        calls = 20 if batch == 1 else 3
        for fn in systems.values():  # warm-up (graph/kernels, allocator)
            fn()
            fn()
        results = {name: [] for name in systems}
        for _ in range(a.blocks):
            for name, fn in systems.items():
                results[name].append(timed_block(fn, calls))
                time.sleep(0.5)
        for name, blocks in results.items():
            seconds = statistics.median(wall for wall, _ in blocks)
            cpu = statistics.median(c for _, c in blocks)
            records.append({"system": NAMES[name], "batch": batch, "seq": a.seq,
                            "latency_ms": round(1000 * seconds, 2),
                            "sequences_per_second": round(batch / seconds, 1),
                            "cpu_ms_per_call": round(1000 * cpu, 2),
                            "block_medians_ms": [round(1000 * w, 2) for w, _ in blocks]})
            print(json.dumps(records[-1]), flush=True)
    out = {"records": records, **info, "threads": a.threads,
           "load_average_1min_before_after": [round(load_before, 2),
                                              round(os.getloadavg()[0], 2)],
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "tensorflow": tf.__version__, "torch": torch.__version__,
           "transformers": transformers.__version__, "numpy": np.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(a.out + ".json", "w") as f:
        json.dump(out, f, indent=2)
    rows = ["| system | batch | L | latency ms (median) | sequences/s | CPU ms per call | "
            "x faster than transformers (wall) |", "|---|---|---|---|---|---|---|"]
    for group in range(0, len(records), len(NAMES)):
        peer = records[group + len(NAMES) - 1]
        for r in records[group:group + len(NAMES)]:
            speedup = "" if r is peer else f"{peer['latency_ms'] / r['latency_ms']:.2f}"
            rows.append(f"| {r['system']} | {r['batch']} | {r['seq']} | {r['latency_ms']} | "
                        f"{r['sequences_per_second']} | {r['cpu_ms_per_call']} | {speedup} |")
    rows.append("")
    rows.append(f"ELECTRA-Small classifier (random weights), raw text in, probabilities out, "
                f"{a.blocks} alternating blocks per system, medians; {out['machine']}, "
                f"{a.threads} threads each (1-min load average before/after: "
                f"{out['load_average_1min_before_after']}); TF {out['tensorflow']}, "
                f"torch {out['torch']}, "
                f"transformers {out['transformers']}; {out['date']}. Export (with its reload "
                f"check) took {info['export_seconds']} s ({info['export_seconds_xla']} s with "
                f"XLA), loading {info['load_seconds']} s.")
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
