"""Benchmark: data-builder throughput (tokens/s) against a pure-Python WordPiece baseline.

Ours: `electra_tf.data.preprocess.build` end to end (read, tokenize with tensorflow-text,
pack, serialize, write shards) over the corpus: one process with one worker thread, one process
with its default pool (a thread per core), and 2 processes.
Baseline: only the tokenization step of the official builder, in pure Python
(bench/pure_python_wordpiece.py) over a sample of the same lines, on one process. It leaves
out packing and writing, so it flatters the baseline; its ids are checked against ours first.

    .venv/bin/python bench/builder.py --corpus ../shared/data/corpus \
        --vocab ../shared/data/vocab/corpus-wordpiece-30522.txt
Appends one JSON line per measurement to bench/results/builder.jsonl and prints a table.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pure_python_wordpiece import PurePythonWordPiece  # noqa: E402

import electra_tf  # noqa: E402, F401  (before TF: sets its oneDNN option)
from electra_tf import tokenization  # noqa: E402
from electra_tf.data import preprocess  # noqa: E402


def sample_lines(files: list[str], per_file: int) -> list[str]:
    lines = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            taken = 0
            for line in f:
                if line.strip():
                    lines.append(line.strip())
                    taken += 1
                    if taken == per_file:
                        break
    return lines


def baseline(vocab: tokenization.Vocab, lines: list[str]) -> dict:
    py = PurePythonWordPiece({t: i for i, t in enumerate(vocab.tokens)})
    tf_tok = tokenization.WordPieceTokenizer(vocab)
    ours = tf_tok.tokenize(__import__("tensorflow").constant(lines)).to_list()
    t, cpu = time.perf_counter(), _cpu_seconds()
    theirs = [py.ids(line) for line in lines]
    seconds, cpu = time.perf_counter() - t, _cpu_seconds() - cpu
    same = sum(a == b for a, b in zip(ours, theirs))
    tokens = sum(len(x) for x in theirs)
    return {"impl": "pure-python wordpiece (tokenize only)", "processes": 1,
            "lines": len(lines), "tokens": tokens, "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2), "tokens_per_cpu_s": round(tokens / cpu),
            "tokens_per_s": round(tokens / seconds), "lines_equal_to_ours": same}


def _cpu_seconds() -> float:
    """CPU time of this process's threads and of its finished child processes."""
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                     resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ours(files: list[str], vocab: tokenization.Vocab, processes: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        options = preprocess.BuildOptions(num_processes=processes, num_threads=threads)
        t, cpu = time.perf_counter(), _cpu_seconds()
        info = preprocess.build(files, vocab, out, options)
        seconds, cpu = time.perf_counter() - t, _cpu_seconds() - cpu
    return {"impl": "electra-tf builder (read+tokenize+pack+write)", "processes": processes,
            "threads": preprocess.worker_count(options) if processes == 1 else 1,
            "documents": info["documents"], "tokens": info["tokens"],
            "examples": info["train_examples"], "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2), "tokens_per_cpu_s": round(info["tokens"] / cpu),
            "tokens_per_s": round(info["tokens"] / seconds)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", default="../shared/data/corpus")
    p.add_argument("--vocab", default="../shared/data/vocab/corpus-wordpiece-30522.txt")
    p.add_argument("--baseline_lines_per_file", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="bench/results/builder.jsonl")
    a = p.parse_args()
    files = sorted(glob.glob(os.path.join(a.corpus, "*.txt")))
    if not files:
        sys.exit(f"bench/builder.py: no *.txt under {a.corpus}")
    vocab = tokenization.load_vocab(a.vocab)
    lines = sample_lines(files, a.baseline_lines_per_file)
    records = []
    for r in range(a.rounds):  # alternate: baseline, 1 thread, 1 process (all cores), 2 processes
        for rec in (baseline(vocab, lines), ours(files, vocab, 1, 1), ours(files, vocab, 1, 0),
                    ours(files, vocab, 2, 0)):
            rec.update(round=r, corpus=[os.path.basename(f) for f in files], cpus=os.cpu_count())
            records.append(rec)
            print(json.dumps(rec), flush=True)
            with open(a.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    med = {}
    for rec in records:
        key = (rec["impl"], rec["processes"], rec.get("threads", 1))
        med.setdefault(key, []).append((rec["tokens_per_s"], rec["tokens_per_cpu_s"]))
    base = [statistics.median(v) for v in zip(*med[("pure-python wordpiece (tokenize only)", 1,
                                                     1)])]
    print("\n| implementation | processes | worker threads | tokens/s (median) | x baseline | "
          "tokens per CPU-second (median) | x baseline |\n|---|---|---|---|---|---|---|")
    for (impl, procs, threads), values in med.items():
        m, c = (statistics.median(v) for v in zip(*values))
        print(f"| {impl} | {procs} | {threads} | {m:,.0f} | {m / base[0]:.1f} | {c:,.0f} | "
              f"{c / base[1]:.1f} |")


if __name__ == "__main__":
    main()
