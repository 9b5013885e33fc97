"""Builds a real 5-class task for the generic classification path: sentiment intensity.

Text and labels: the ground truth of Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model
for Sentiment Analysis of Social Media Text" (ICWSM 2014), shipped in the vaderSentiment==3.3.2
source distribution on the Python package index (MIT license; `additional_resources/
hutto_ICWSM_2014.tar.gz`): 23,703 tweets, movie-review, product-review and New York Times
editorial snippets, each rated -4..4 by about ten people. Label = the mean rating binned:
very_negative (< -2), negative (< -0.5), neutral (-0.5..0.5), positive (<= 2), very_positive
(> 2). Texts are deduplicated (first occurrence kept), tabs and newlines become spaces; the split
is 80/10/10 by a hash of the text, so it does not depend on file order.

    python experiments/build_intensity_task.py --output_dir data/intensity
writes train.tsv, dev.tsv, test.tsv (header `label<TAB>text`), NOTICE and counts.json
(--references: also the majority class's and TF-IDF + logistic regression's scores). Use:
    run_finetuning.py --task=generic --data_dir=data/intensity --text_columns=text \
        --label_column=label --test_has_labels ...
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE, VERSION = "vaderSentiment", "3.3.2"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
SOURCES = {"tweets": "tweets_GroundTruth.txt", "movies": "movieReviewSnippets_GroundTruth.txt",
           "products": "amazonReviewSnippets_GroundTruth.txt",
           "editorials": "nytEditorialSnippets_GroundTruth.txt"}

def label(rating: float) -> str:
    """The mean rating's class (the bounds as the module docstring says)."""
    if rating < -2.0:
        return "very_negative"
    if rating < -0.5:
        return "negative"
    if rating <= 0.5:
        return "neutral"
    return "positive" if rating <= 2.0 else "very_positive"


def split_of(text: str) -> str:
    bucket = int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 10
    return "dev" if bucket == 8 else "test" if bucket == 9 else "train"


def download(directory: Path) -> Path:
    """The sdist from the package index (pip), checked against its known hash."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    f"{PACKAGE}=={VERSION}", "-d", str(directory), "-q"], check=True)
    path = directory / f"{PACKAGE}-{VERSION}.tar.gz"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {SDIST_SHA256}")
    return path


def read_snippets(sdist: Path) -> tuple[list[tuple[str, str, str]], str]:
    """[(text, label, source)] in file order, and the package's license text."""
    with tarfile.open(sdist) as outer:
        root = f"{PACKAGE}-{VERSION}"
        license_text = outer.extractfile(f"{root}/LICENSE.txt").read().decode("utf-8")
        inner = outer.extractfile(f"{root}/additional_resources/hutto_ICWSM_2014.tar.gz")
        with tarfile.open(fileobj=io.BytesIO(inner.read())) as data:
            rows = []
            for source, name in SOURCES.items():
                raw = data.extractfile(f"hutto_ICWSM_2014/{name}").read().decode("utf-8")
                for line in raw.splitlines():
                    parts = line.split("\t", 2)
                    if len(parts) == 3 and parts[2].strip():
                        text = " ".join(parts[2].split())
                        rows.append((text, label(float(parts[1])), source))
    return rows, license_text


def build(output_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rows, license_text = read_snippets(download(Path(tmp)))
    seen, splits = set(), collections.defaultdict(list)
    for text, name, source in rows:
        if text not in seen:
            seen.add(text)
            splits[split_of(text)].append((name, text, source))
    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "dev", "test"):
        examples = splits[split]
        lines = ["label\ttext"] + [f"{name}\t{text}" for name, text, _ in examples]
        (output_dir / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[split] = {"examples": len(examples),
                         "labels": dict(sorted(collections.Counter(n for n, _, _ in examples)
                                               .items())),
                         "sources": dict(sorted(collections.Counter(s for _, _, s in examples)
                                                .items()))}
    (output_dir / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
    (output_dir / "NOTICE").write_text(
        f"Built by experiments/build_intensity_task.py from {PACKAGE}=={VERSION} (source "
        "distribution, additional_resources/hutto_ICWSM_2014.tar.gz): Hutto, C.J. & Gilbert, "
        "E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social "
        "Media Text. ICWSM-14.\n\n" + license_text)
    return counts


def references(output_dir: Path) -> dict:
    """Dev and test scores of the majority class and of TF-IDF 1-2-grams + logistic regression
    (C from 1, 3, 10 by dev accuracy), for scale."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    def read(split):
        rows = [line.split("\t", 1) for line in
                (output_dir / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]]
        return [text for _, text in rows], [name for name, _ in rows]

    (train, y_train), (dev, y_dev), (test, y_test) = map(read, ("train", "dev", "test"))
    majority = collections.Counter(y_train).most_common(1)[0][0]
    out = {"majority": {"class": majority,
                        "accuracy": accuracy_score(y_dev, [majority] * len(y_dev)),
                        "test_accuracy": accuracy_score(y_test, [majority] * len(y_test))}}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(train)
    best = None
    for c in (1.0, 3.0, 10.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(features, y_train)
        dev_pred = model.predict(vectorizer.transform(dev))
        if best is None or accuracy_score(y_dev, dev_pred) > best[0]:
            test_pred = model.predict(vectorizer.transform(test))
            best = (accuracy_score(y_dev, dev_pred), {
                "C": c, "accuracy": accuracy_score(y_dev, dev_pred),
                "macro_f1": f1_score(y_dev, dev_pred, average="macro"),
                "test_accuracy": accuracy_score(y_test, test_pred),
                "test_macro_f1": f1_score(y_test, test_pred, average="macro")})
    out["tfidf_logistic_regression"] = best[1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True, type=Path)
    parser.add_argument("--references", action="store_true",
                        help="then print the majority class's and TF-IDF + logistic "
                        "regression's scores (needs scikit-learn)")
    args = parser.parse_args()
    print(json.dumps(build(args.output_dir), indent=2))
    if args.references:
        print(json.dumps(references(args.output_dir), indent=2))


if __name__ == "__main__":
    main()
