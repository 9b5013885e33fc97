"""Rule-made fine-tuning tasks on real text: one per task family, in the official file formats.

Text: verses of the World English Bible (demo_data/web.txt.gz, public domain) and a fixed list
of names from it (`NAMES`, persons and places, one or two words, most words several pieces).
Each target follows a rule that the tiny model learns from random weights in a few hundred
steps at most, and that a plumbing bug breaks: tags trained on one piece and read from another,
spans decoded one piece off, the second text of a pair dropped, the regression output not used.
  tagging (CoNLL):   verses with up to two names put in; every listed name in the text is
                     tagged B-/I-PER or B-/I-LOC (`tag`);
  squad (SQuAD 1.1 / 2.0 JSON): the answer is the name after the marker "The hidden name is",
                     whose sentence is put between the verses of a context of one to five
                     verses (often several windows); 2.0: a third of the contexts have none.
                     The question is always the same: reading it is left to the pair tasks;
  sts (STS-B):       the score is 2.5 x the number of the two sentences that have a name;
  pairs (MNLI, MRPC, QQP): the label is the number of the two sentences that have a name:
                     MNLI contradiction / neutral / entailment for 0 / 1 / 2, MRPC and QQP 1
                     when either has one.
The sentence tasks are built so that one sentence alone cannot reach their bars.
Why names, and not, say, "is the second sentence a shuffled copy of the first": from random
weights a tiny model learns what a word is in a hundred steps, but comparing words across the
two texts, attending to a neighbour or combining the question with the context took it many
hundreds: word-overlap pairs stayed at chance after 375 steps (hidden 32 or 64), any words
after a marker at 23% exact match after 750, and a question asking for a person's or a
place's name reached 92% only after 500 steps of a model twice as wide.
`write_rule_vocab` learns a small WordPiece vocabulary from the same verses.
"""

from __future__ import annotations

import functools
import gzip
import json
import pathlib
import re

import numpy as np

from electra_tf import tokenization

DEMO = pathlib.Path(__file__).resolve().parents[1] / "demo_data"
POOL = 20_000  # the first verses of the corpus (Genesis to Psalm 83): the text of every task
# Names to tag: several words, and words the learned vocabulary splits into several pieces.
NAMES = {"PER": ("Tiglath Pileser", "Merodach Baladan", "Mephibosheth", "Methuselah",
                 "Zerubbabel"),
         "LOC": ("Kibroth Hattaavah", "Ezion Geber", "Helkath Hazzurim", "Jegar Sahadutha",
                 "Zarephath")}


@functools.lru_cache(maxsize=1)
def verses() -> tuple[str, ...]:
    """The pool's non-empty lines (verses), as written."""
    with gzip.open(DEMO / "web.txt.gz", "rt", encoding="utf-8") as f:
        lines = (line.strip() for line in f)
        out = []
        for line in lines:
            if line:
                out.append(line)
            if len(out) == POOL:
                return tuple(out)
    return tuple(out)


def split_words(text: str) -> list[str]:
    """Words and punctuation marks, as BERT's pre-tokenizer splits them."""
    return re.findall(r"\w+|[^\w\s]", text)


def plain_words(text: str) -> list[str]:
    """The lower-cased words of a text, without punctuation."""
    return re.findall(r"\w+", text.lower())


@functools.lru_cache(maxsize=2)
def short(without_names: bool = False) -> tuple[str, ...]:
    """The pool's verses of 6 to 14 words (the sentences of tagging and the sentence tasks),
    optionally only those without a listed name."""
    pool = verses_without_names() if without_names else verses()
    return tuple(v for v in pool if 6 <= len(plain_words(v)) <= 14)


def write_rule_vocab(directory: pathlib.Path, size: int = 2000) -> tokenization.Vocab:
    """A WordPiece vocabulary learned from the pool, plus a first piece for each name word.

    The added piece is the word's shortest prefix of 3 letters or more (or the word) that no
    other word of the pool starts with: the names still split into several pieces, but their
    first piece, where the tag is read, is theirs alone. Learned first pieces such as "me" of
    "Methuselah" are common words too: telling them apart takes the following pieces, which a
    tiny model from random weights learns to attend to too slowly for a test.
    """
    corpus = directory / "verses.txt"
    corpus.write_text("\n".join(verses()) + "\n", encoding="utf-8")
    learned = tokenization.learn_vocab([str(corpus)], size, str(directory / "learned.txt"))
    names = {w.lower() for kind in NAMES.values() for name in kind for w in name.split()}
    others = {w for v in verses() for w in plain_words(v)} - names
    added = []
    for word in sorted(names):
        prefix = next((word[:k] for k in range(3, len(word) + 1)
                       if not any(o.startswith(word[:k]) for o in others)), None)
        if prefix and prefix not in learned.tokens and prefix not in added:
            added.append(prefix)
    path = directory / "vocab.txt"
    path.write_text("\n".join(learned.tokens + tuple(added)) + "\n", encoding="utf-8")
    return tokenization.load_vocab(str(path))


# --- tagging --------------------------------------------------------------------------------------

def _name_table() -> list[tuple[list[str], str]]:
    """(lower-cased words, type) of every name, longest first (the rule's longest match)."""
    table = [(split_words(name.lower()), kind) for kind, names in NAMES.items()
             for name in names]
    return sorted(table, key=lambda entry: -len(entry[0]))


def tag(words: list[str]) -> list[str]:
    """The rule: B-/I-<type> on every occurrence of a listed name (longest match), O elsewhere."""
    lower, tags, i = [w.lower() for w in words], ["O"] * len(words), 0
    table = _name_table()
    while i < len(words):
        for name, kind in table:
            if lower[i:i + len(name)] == name:
                tags[i:i + len(name)] = [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
                i += len(name) - 1
                break
        i += 1
    return tags


def tagging_sentences(rng: np.random.Generator, n: int) -> list[tuple[list[str], list[str]]]:
    """n verses (words and punctuation) with zero to two names inserted at random places."""
    names = [split_words(name) for kind in NAMES.values() for name in kind]
    pool = short()
    out = []
    for _ in range(n):
        words = split_words(pool[rng.integers(len(pool))])
        tags = tag(words)  # the verse's own names are not cut by an insertion
        free = [i for i in range(len(words) + 1) if i == len(words) or tags[i][0] != "I"]
        count = rng.choice(3, p=[0.15, 0.5, 0.35])
        for at in sorted(rng.choice(free, count, replace=False), reverse=True):
            words[at:at] = names[rng.integers(len(names))]
        out.append((words, tag(words)))
    return out


def write_conll_task(directory: pathlib.Path, sizes=(("train", 600), ("dev", 150)),
                     seed: int = 0) -> pathlib.Path:
    """train.txt / dev.txt (/ test.txt) in the CoNLL-2003 layout (word POS chunk tag)."""
    from helpers import write_conll

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        write_conll(directory / f"{split}.txt", tagging_sentences(rng, n))
    return directory


# --- extractive QA --------------------------------------------------------------------------------

MARKER = "The hidden name is"
QUESTION = "Which name is hidden?"


@functools.lru_cache(maxsize=1)
def verses_without_names() -> tuple[str, ...]:
    """The pool's verses that have no word of a listed name (QA contexts)."""
    words = {w.lower() for kind in NAMES.values() for name in kind for w in name.split()}
    return tuple(v for v in verses() if not words & set(plain_words(v)))


def squad_article(rng: np.random.Generator, n: int, version: str, prefix: str) -> dict:
    """n questions, each with its own context (one paragraph per question).

    Context: one to five consecutive verses and, between two of them or at either end, the
    marker sentence with a listed name, e.g. "The hidden name is Ezion Geber." or "The hidden
    name is Zarephath again."; in 2.0 a third of the contexts have no marker sentence (no
    answer).
    """
    pool = verses_without_names()
    names = [name for kind in NAMES.values() for name in kind]
    paragraphs = []
    for k in range(n):
        first = int(rng.integers(len(pool) - 5))
        parts = list(pool[first:first + int(rng.integers(1, 6))])
        qa = {"id": f"{prefix}-{k}", "question": QUESTION, "answers": []}
        if version == "1.1" or rng.random() >= 1 / 3:
            name = names[rng.integers(len(names))]
            at = int(rng.integers(len(parts) + 1))
            before = " ".join(parts[:at])
            qa["answers"] = [{"text": name, "answer_start": len(before) + bool(before)
                              + len(MARKER) + 1}]
            # a word after the name in half of them: an answer decoded one piece too long is
            # then wrong (a full stop would be dropped by the scoring's normalization)
            after = rng.choice(["", " today", " again", " indeed"], p=[0.5, 1 / 6, 1 / 6, 1 / 6])
            parts.insert(at, f"{MARKER} {name}{after}.")
        if version == "2.0":
            qa["is_impossible"] = not qa["answers"]
        paragraphs.append({"context": " ".join(parts), "qas": [qa]})
    return {"title": prefix, "paragraphs": paragraphs}


def write_squad_task(directory: pathlib.Path, version: str,
                     sizes=(("train", 500), ("dev", 200)), seed: int = 0) -> pathlib.Path:
    """train.json / dev.json in the SQuAD layout (2.0: with is_impossible)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        data = {"version": version, "data": [squad_article(rng, n, version, split)]}
        (directory / f"{split}.json").write_text(json.dumps(data))
    return directory


# --- sentence pairs and regression ----------------------------------------------------------------

def with_names(rng: np.random.Generator, count: int) -> str:
    """A short verse without listed names, with `count` of them put between its words."""
    pool = short(without_names=True)
    names = [name for kind in NAMES.values() for name in kind]
    words = pool[rng.integers(len(pool))].split(" ")
    for at in sorted(rng.choice(len(words) + 1, count, replace=False), reverse=True):
        words.insert(at, names[rng.integers(len(names))])
    return " ".join(words)


def sts_examples(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """(sentence 1, sentence 2, score) triples: the score is 2.5 x the number of the two
    sentences that have a listed name. Pairs where one has a name are two thirds of them, so
    that either sentence alone tells little: the best Pearson from one sentence is 0.58."""
    out = []
    cases = ((0, 0), (1, 1), (0, 1), (1, 0))
    for _ in range(n):
        has = cases[rng.choice(4, p=[1 / 6, 1 / 6, 1 / 3, 1 / 3])]
        out.append((with_names(rng, has[0]), with_names(rng, has[1]), f"{2.5 * sum(has):.1f}"))
    return out


PAIR_LABELS = {"mnli": ("contradiction", "neutral", "entailment"), "mrpc": ("0", "1", "1"),
               "qqp": ("0", "1", "1")}


def pair_examples(task: str):
    """A function (rng, n) -> (sentence 1, sentence 2, label) triples: each sentence has a
    listed name or not (even odds); the label is the number of sentences with one (0, 1, 2)
    through PAIR_LABELS: MNLI contradiction / neutral / entailment, MRPC and QQP 1 when one or
    both have one."""
    labels = PAIR_LABELS[task]

    def make(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
        out = []
        for _ in range(n):
            has = rng.integers(0, 2, 2)
            out.append((with_names(rng, has[0]), with_names(rng, has[1]), labels[has.sum()]))
        return out
    return make


# --- the tasks as the learning tests and experiments use them -----------------------------------

# name -> (metrics that must reach the bar, the bar): the learning tests' bars
BARS = {"ner": (("f1",), 0.95), "squadv1": (("exact_match",), 90.0),
        "squad": (("best_exact",), 90.0), "sts": (("pearson",), 0.8),
        "mnli": (("matched_accuracy", "mismatched_accuracy"), 0.9),
        "mrpc": (("accuracy",), 0.9), "qqp": (("accuracy",), 0.9)}


def write_task(name: str, directory: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """The rule-made task of a preset (BARS' names) in its official files under `directory`:
    tagging 600 / 150 sentences, SQuAD 500 / 200 questions, the sentence tasks 1,200 / 150
    pairs (and 6 test pairs)."""
    from helpers import write_glue

    if name == "ner":
        return write_conll_task(directory, seed=seed)
    if name in ("squad", "squadv1"):
        return write_squad_task(directory, "2.0" if name == "squad" else "1.1", seed=seed)
    examples = sts_examples if name == "sts" else pair_examples(name)
    return write_glue(directory, name, n_train=1200, n_dev=150, n_test=6, seed=seed,
                      examples=examples)


def reached(name: str, metrics: dict) -> bool:
    """Whether dev `metrics` of task `name` reach its bar (BARS)."""
    keys, bar = BARS[name]
    return all(metrics[key] >= bar for key in keys)
