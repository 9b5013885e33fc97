"""A task's training text, without its labels, as a pretraining corpus (in-domain text).

Writes the text column of `label<TAB>text` rows, --per_document rows to a document (one row a
line, a blank line between documents: the layout build_pretraining_dataset.py reads).

    .venv/bin/python experiments/task_corpus.py --task_file demo_data/sentiment/train.tsv \
        --output data/sentiment_train.txt
"""

from __future__ import annotations

import argparse


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task_file", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--per_document", type=int, default=8)
    a = p.parse_args()
    with open(a.task_file, encoding="utf-8") as f:
        texts = [line.rstrip("\n").split("\t", 1)[1] for line in f if line.strip()]
    with open(a.output, "w", encoding="utf-8") as f:
        for start in range(0, len(texts), a.per_document):
            f.write("\n".join(texts[start:start + a.per_document]) + "\n\n")
    print(f"{len(texts)} rows -> {a.output}")


if __name__ == "__main__":
    main()
