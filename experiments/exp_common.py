"""What the experiments share: the sentiment task's spec and building shards from a corpus."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from electra_tf import tokenization
from electra_tf.data import preprocess, tasks


def sentiment_spec() -> tasks.TaskSpec:
    """The sentiment task's files (demo_data/sentiment, ../shared/data/tasks/sentiment):
    label<TAB>text, no header."""
    return tasks.generic_spec("sentiment", "classification", "tsv", ("1",), "0",
                              has_header=False)


ROOT = Path(__file__).resolve().parent.parent


def run_script(args: list[str], log: Path) -> str:
    """Runs one of the project's scripts from the project's root, its output to `log`;
    returns the output."""
    with open(log, "w") as f:
        code = subprocess.run([sys.executable, *args], stdout=f, stderr=subprocess.STDOUT,
                              cwd=ROOT).returncode
    text = log.read_text()
    if code:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({code}); see {log}")
    return text


def build_shards(corpus: Path, work: Path, vocab_size: int, length: int,
                 num_shards: int) -> tokenization.Vocab:
    """A vocabulary learned from `corpus` (work/vocab.txt), then shards of `length` under
    work/shards; both reused when already built."""
    if (work / "shards" / "dataset_info.json").exists():
        return tokenization.load_vocab(str(work / "vocab.txt"))
    vocab = tokenization.learn_vocab([str(corpus)], vocab_size, str(work / "vocab.txt"))
    preprocess.build([str(corpus)], vocab, str(work / "shards"),
                     preprocess.BuildOptions(max_seq_length=length, num_shards=num_shards))
    return vocab


def split_of(text: str) -> str:
    """'train', 'dev' or 'test' (80/10/10) by a hash of the text: stable across runs."""
    bucket = int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def write_task(output_dir: str, rows: list[tuple[str, str, str]], arguments: dict) -> dict:
    """(split, label, text) rows -> output_dir/{train,dev,test}.tsv (`label<TAB>text`, no
    header, like demo_data/sentiment) and counts.json; returns the counts per split and label."""
    os.makedirs(output_dir, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    files = {s: open(f"{output_dir}/{s}.tsv", "w", encoding="utf-8")
             for s in ("train", "dev", "test")}
    for split, label, text in rows:
        files[split].write(f"{label}\t{text}\n")
        counts.setdefault(split, {}).setdefault(label, 0)
        counts[split][label] += 1
    for f in files.values():
        f.close()
    with open(f"{output_dir}/counts.json", "w") as f:
        json.dump({"arguments": arguments, "counts": counts}, f, indent=1)
    return counts
