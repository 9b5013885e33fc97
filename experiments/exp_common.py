"""What the experiments share: the sentiment task's spec and building shards from a corpus."""

from __future__ import annotations

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
