"""A word-order task from text the pretraining never read: is a sentence as written, or were two
neighbouring words (characters, with --chars) swapped?

Both classes hold the same words, so a bag of words cannot tell them apart: a model has to know
in which order its language puts words, which pretraining can read from unlabelled text and a
few hundred labels cannot teach random weights. It is the question the sentiment curves leave
open: does a briefly pretrained encoder know anything a fine-tuning from random weights does not?

Each distinct text (column --text_column of the TSV inputs; with --clauses, each clause of at
least --min_units units) is one example: as written (`written`) or, drawn with probability 1/2
(seeded), with one pair of different neighbouring units among the first --max_position swapped
(`swapped`; punctuation and digits never move; the first units stay inside the fine-tuning
length). Split 80/10/10 by a hash of the original text.

    python experiments/word_order_task.py --input demo_data/sentiment/train.tsv \
        --input demo_data/sentiment/dev.tsv --input demo_data/sentiment/test.tsv \
        --output_dir data/word_order_en
    python experiments/word_order_task.py --chars --clauses \
        --input ../shared/data/zh/sentiment/dev.tsv --input ../shared/data/zh/sentiment/test.tsv \
        --output_dir data/word_order_zh
writes train.tsv, dev.tsv, test.tsv (`label<TAB>text`, no header, like demo_data/sentiment) and
counts.json.
"""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
from exp_common import split_of, write_task

CLAUSE_END = re.compile(r"(?<=[。！？；，、!?;,])")


def units_of(text: str, chars: bool) -> list[str]:
    """Words (whitespace-separated) or characters (spaces dropped)."""
    return [c for c in text if not c.isspace()] if chars else text.split()


def join_units(units: list[str], chars: bool) -> str:
    return "".join(units) if chars else " ".join(units)


def is_word(unit: str) -> bool:
    """A unit a swap may move: a Chinese character, or a word holding a letter."""
    return bool(re.search(r"[a-zA-Z\u4e00-\u9fff]", unit))


def swap_neighbours(units: list[str], max_position: int, rng: np.random.Generator
                    ) -> list[str] | None:
    """`units` with one pair of different neighbouring words among the first `max_position`
    swapped (case-insensitively different; punctuation and digits stay), or None when there is
    no such pair."""
    pairs = [i for i in range(min(len(units), max_position) - 1)
             if units[i].lower() != units[i + 1].lower()
             and is_word(units[i]) and is_word(units[i + 1])]
    if not pairs:
        return None
    i = pairs[rng.integers(len(pairs))]
    out = list(units)
    out[i], out[i + 1] = out[i + 1], out[i]
    return out


def source_texts(paths: list[str], column: int, clauses: bool, chars: bool,
                 min_units: int) -> list[str]:
    """Distinct texts of at least `min_units` units, in input order."""
    seen: dict[str, None] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                fields = line.rstrip("\n").split("\t")
                if len(fields) <= column:
                    raise ValueError(f"{path}:{n}: expected a text in column {column}, "
                                     f"found {len(fields)} column(s)")
                pieces = CLAUSE_END.split(fields[column]) if clauses else [fields[column]]
                for piece in pieces:
                    units = units_of(piece, chars)
                    if len(units) >= min_units:
                        seen.setdefault(join_units(units, chars))
    return list(seen)


def examples(texts: list[str], chars: bool, max_position: int, seed: int
             ) -> list[tuple[str, str, str]]:
    """(split, label, text) for every text; labels drawn with probability 1/2."""
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        units = units_of(text, chars)
        swapped = swap_neighbours(units, max_position, rng) if rng.random() < 0.5 else None
        label, shown = ("swapped", join_units(swapped, chars)) if swapped else ("written", text)
        out.append((split_of(text), label, shown))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", action="append", required=True, help="a TSV file; repeatable")
    p.add_argument("--text_column", type=int, default=1)
    p.add_argument("--chars", action="store_true", help="units are characters (Chinese)")
    p.add_argument("--clauses", action="store_true", help="one example per clause")
    p.add_argument("--min_units", type=int, default=8)
    p.add_argument("--max_position", type=int, default=24,
                   help="swaps happen among the first N units")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output_dir", required=True)
    a = p.parse_args()
    texts = source_texts(a.input, a.text_column, a.clauses, a.chars, a.min_units)
    counts = write_task(a.output_dir, examples(texts, a.chars, a.max_position, a.seed), vars(a))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
