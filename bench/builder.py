"""Benchmark: data-builder throughput (tokens/s) against a pure-Python WordPiece baseline.

Ours: `electra_tf.data.preprocess.build` end to end (read, tokenize with tensorflow-text,
pack, serialize, write shards) over the corpus, with 1 and 2 processes.
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
    t = time.perf_counter()
    theirs = [py.ids(line) for line in lines]
    seconds = time.perf_counter() - t
    same = sum(a == b for a, b in zip(ours, theirs))
    tokens = sum(len(x) for x in theirs)
    return {"impl": "pure-python wordpiece (tokenize only)", "processes": 1,
            "lines": len(lines), "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds), "lines_equal_to_ours": same}


def ours(files: list[str], vocab: tokenization.Vocab, processes: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        info = preprocess.build(files, vocab, out,
                                preprocess.BuildOptions(num_processes=processes))
        seconds = time.perf_counter() - t
    return {"impl": "electra-tf builder (read+tokenize+pack+write)", "processes": processes,
            "documents": info["documents"], "tokens": info["tokens"],
            "examples": info["train_examples"], "seconds": round(seconds, 2),
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
    for r in range(a.rounds):  # alternate: baseline, 1 process, 2 processes
        for rec in (baseline(vocab, lines), ours(files, vocab, 1), ours(files, vocab, 2)):
            rec.update(round=r, corpus=[os.path.basename(f) for f in files], cpus=os.cpu_count())
            records.append(rec)
            print(json.dumps(rec), flush=True)
            with open(a.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    med = {}
    for rec in records:
        med.setdefault((rec["impl"], rec["processes"]), []).append(rec["tokens_per_s"])
    base = statistics.median(med[("pure-python wordpiece (tokenize only)", 1)])
    print("\n| implementation | processes | tokens/s (median) | x baseline | x baseline per "
          "process |\n|---|---|---|---|---|")
    for (impl, procs), values in med.items():
        m = statistics.median(values)
        print(f"| {impl} | {procs} | {m:,.0f} | {m / base:.1f} | {m / base / procs:.1f} |")


if __name__ == "__main__":
    main()
