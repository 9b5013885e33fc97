"""Documents of several text files (blank line between documents) in one random order.

The pretraining input pipeline reads shards nearly in order (a 10,000-row shuffle buffer), so a
short run sees the corpus's first files; comparing two builds of the same corpus at equal steps
needs both to draw from the same mixture. Deterministic for a given --seed.

    python experiments/shuffle_documents.py --input ../shared/data/corpus/web.txt \
        --input ../shared/data/corpus/fortune.txt --input ../shared/data/corpus/gcide.txt \
        --output data/corpus_shuffled.txt
"""

from __future__ import annotations

import argparse
import random


def documents(path: str) -> list[list[str]]:
    docs, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                current.append(line.strip())
            elif current:
                docs.append(current)
                current = []
    return docs + ([current] if current else [])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", action="append", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    docs = [doc for path in a.input for doc in documents(path)]
    random.Random(a.seed).shuffle(docs)
    with open(a.output, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write("\n".join(doc) + "\n\n")
    print(f"{len(docs)} documents -> {a.output}")


if __name__ == "__main__":
    main()
