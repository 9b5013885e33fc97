"""An in-domain task for the demo corpus: which testament does a line of the Bible come from?

Text: demo_data/web.txt.gz (the World English Bible, public domain; one chapter a document, the
New Testament from the chapter that opens "The book of the genealogy of Jesus Christ" on). Every
line of at least --min_words words is an example, labelled `old` (the Old Testament and the
deuterocanonical books before Matthew) or `new`; the old lines are subsampled (seeded) to as many
as the new ones, so the majority class is about 0.5. Split 80/10/10 by a hash of the line.

The pretraining corpus of the demo holds these lines without their labels: this is the setting
of a user who pretrains on their own unlabelled text and then labels a little of it.

    python experiments/testament_task.py --output_dir data/testament
writes train.tsv, dev.tsv, test.tsv (`label<TAB>text`, no header, like demo_data/sentiment) and
counts.json.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os

import numpy as np
from exp_common import split_of, write_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST_NEW = "The book of the genealogy of Jesus Christ"


def labelled_lines(corpus: str, min_words: int) -> list[tuple[str, str]]:
    """(label, line) for every line of the corpus with at least `min_words` words."""
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        documents = f.read().split("\n\n")
    starts = [i for i, doc in enumerate(documents) if doc.strip().startswith(FIRST_NEW)]
    if len(starts) != 1:
        raise ValueError(f"{corpus}: expected one chapter opening {FIRST_NEW!r}, "
                         f"found {len(starts)}")
    rows = []
    for i, doc in enumerate(documents):
        label = "new" if i >= starts[0] else "old"
        rows += [(label, line.strip()) for line in doc.split("\n")
                 if len(line.split()) >= min_words and "\t" not in line]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=os.path.join(ROOT, "demo_data", "web.txt.gz"))
    p.add_argument("--min_words", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output_dir", required=True)
    a = p.parse_args()
    rows = list(dict((text, label) for label, text in labelled_lines(a.corpus, a.min_words))
                .items())  # one row per distinct line
    new = [r for r in rows if r[1] == "new"]
    old = [r for r in rows if r[1] == "old"]
    keep = np.random.default_rng(a.seed).permutation(len(old))[:len(new)]
    chosen = sorted(new + [old[i] for i in keep], key=lambda r: hashlib.md5(
        r[0].encode("utf-8")).hexdigest())
    counts = write_task(a.output_dir, [(split_of(text), label, text) for text, label in chosen],
                        vars(a))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
