"""What the tests share: tiny configs, synthetic batches, test vocabularies, and writers of
corpora and task files in the official layouts. Fixtures live in conftest.py."""

from __future__ import annotations

import json
import signal
import subprocess

import numpy as np
import tensorflow as tf

from electra_tf import tokenization
from electra_tf.config import get_config
from electra_tf.data import tasks

# Special ids of the test vocabularies: deliberately not BERT's 0/100/101/102/103.
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4

# The words of the synthetic corpora (write_corpus) and of the synthetic tasks (write_glue,
# write_squad, write_conll), and the vocabularies holding them (write_vocab).
CORPUS_WORDS = [f"w{i}" for i in range(200)]
TASK_WORDS = ("the a is was not very good bad great awful movie film plot actor john smith "
              "paris london lives in works at acme corp where does who what city river and of "
              "to it he she this that one two seine france england capital").split()
TASK_PIECES = ("##s", "##ed", ".", ",", "?", "'", "-", "!")
CORPUS_VOCAB = (*CORPUS_WORDS, ".", ",")
TASK_VOCAB = (*TASK_WORDS, *TASK_PIECES)


def write_vocab(directory, words=CORPUS_VOCAB, name: str = "vocab.txt") -> tokenization.Vocab:
    """The special tokens then `words`, as directory/<name>, loaded."""
    path = directory / name
    path.write_text("\n".join(tokenization.SPECIAL_TOKENS + tuple(words)) + "\n",
                    encoding="utf-8")
    return tokenization.load_vocab(str(path))


# Chinese as people write it, for tests that need no shared data: full-width punctuation,
# digits and letters, the ideographic space, mixed Latin (accents, capitals), half-width
# katakana, Hangul, emoji, a compatibility ideograph, an Extension B ideograph, and format and
# control characters BERT removes.
ZH_TEXTS = [
    "配置不错，性价比挺高的。重量也很轻！",
    "房间：干净；服务？一般……价格１２８元，ＷｉＦｉ免费。",
    "自带Windows XP和Windows Vista两种驱动光盘（正版）",
    "「好评」《三体》——刘慈欣著，２００８年出版",
    "全角空格\u3000分隔，半角,逗号.句号 ＡＢＣ ａｂｃ",
    "Crème brûlée与ÉCOLE同行：naïve Ångström",
    "控制\x00字符\x07响铃\u200b零宽\ufeff和\ufffd替换\t制表\n换行",
    "emoji😀👍🏽表情〜～、“引号”‘单引号’",
    "兼容汉字\uf900与扩展B的\U00020000字",
    "ｶﾀｶﾅ半角片假名和カタカナ，한국어도",
    "",
    "\u3000\u3000",
]


def zh_vocab(directory, lower_case: bool) -> tokenization.Vocab:
    """A vocabulary learned from ZH_TEXTS (its last three left out, so some characters are
    [UNK]), written in `directory`."""
    corpus = directory / f"zh-{lower_case}.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in ZH_TEXTS[:-3]) + "\n",
                      encoding="utf-8")
    return tokenization.learn_vocab([str(corpus)], 500, str(directory / f"vocab-{lower_case}.txt"),
                                    lower_case=lower_case, min_frequency=1)


def tiny_config(vocab_size: int = 100, max_seq_length: int = 32, **model):
    """A very small model for unit tests (hidden 32, 2 layers, E=16 != H to exercise projection)."""
    sizes = dict(vocab_size=vocab_size, embedding_size=16, hidden_size=32, num_layers=2,
                 num_heads=2, intermediate_size=64, generator_fraction=0.5,
                 max_position_embeddings=64)
    sizes.update(model)
    return get_config("tiny").replace(model=sizes, pretrain={"max_seq_length": max_seq_length})


def packed_batch(batch_size: int, length: int, vocab_size: int, seed: int = 0,
                 min_len: int = 3) -> dict[str, tf.Tensor]:
    """Random packed sequences `[CLS] ... [SEP] [PAD]...` of mixed lengths, int32 [B, L]."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(min_len, length + 1, batch_size)
    ids = rng.integers(5, vocab_size, (batch_size, length))
    mask = (np.arange(length)[None] < lens[:, None]).astype(np.int32)
    ids = ids * mask
    ids[:, 0] = CLS
    ids[np.arange(batch_size), lens - 1] = SEP
    segments = np.zeros_like(ids)
    for i, n in enumerate(lens):
        if n > 6:  # two segments: [CLS] A [SEP] B [SEP]
            cut = n // 2
            ids[i, cut] = SEP
            segments[i, cut + 1:n] = 1
    return {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
            "segment_ids": tf.constant(segments, tf.int32)}


def write_corpus(path, docs, seed=0, sentences=(1, 12), words=(1, 40)):
    """docs: number of documents; each has 1-12 sentences of 1-40 words 'wN' (the ranges)."""
    rng = np.random.default_rng(seed)
    text = []
    for _ in range(docs):
        for _ in range(rng.integers(sentences[0], sentences[1] + 1)):
            chosen = rng.choice(CORPUS_WORDS, rng.integers(words[0], words[1] + 1))
            text.append(" ".join(chosen) + " .")
        text.append("")
    path.write_text("\n".join(text) + "\n")
    return path


def sentence(rng, positive: bool, length: int = 6) -> str:
    """A sentence whose sentiment word decides its label (learnable by a tiny model)."""
    filler = rng.choice(["the", "movie", "film", "plot", "was", "is", "very", "actor"], length)
    words = list(filler)
    words.insert(int(rng.integers(0, length)), "good" if positive else "bad")
    return " ".join(words) + " ."


def write_tsv(path, header, rows):
    lines = (["\t".join(header)] if header else []) + ["\t".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def glue_row(task: str, i: int, a: str, b: str, label, test: bool) -> tuple:
    """Row i of a GLUE task's train/dev (with `label`) or test file, in the distribution's
    column layout. label: "0"/"1" (CoLA, SST, MRPC, QQP), a score (STS-B), a label name."""
    if task == "cola":
        return (i, a) if test else ("gj04", label, "" if label == "1" else "*", a)
    if task == "sst":
        return (i, a) if test else (a, label)
    if task == "mrpc":
        return (i, 100 + i, 200 + i, a, b) if test else (label, 100 + i, 200 + i, a, b)
    if task == "sts":
        base = (i, "main-captions", "MSRvid", "2012test", f"{i:04d}")
        return base + (a, b) if test else base + ("none", "none", a, b, label)
    if task == "qqp":
        return (i, a, b) if test else (i, 2 * i, 2 * i + 1, a, b, label)
    if task == "mnli":
        parses = ("(a)", "(b)", "(a)", "(b)")
        front = (i, 31193 + i, f"{i}n", "government") + parses + (a, b)
        return front if test else front + (label, label)
    return (i, a, b) if test else (i, a, b, label)  # qnli, rte


def glue_rows(task: str, rng, n: int, test: bool):
    """n rows of synthetic sentences whose sentiment word decides the label."""
    rows = []
    for i in range(n):
        y = int(rng.integers(0, 2))
        a, b = sentence(rng, y == 1), sentence(rng, y == 1)
        if task == "sts":
            label = f"{5.0 * y * rng.uniform(0.6, 1.0):.3f}"
        elif task == "mnli":
            label = ("entailment", "contradiction", "neutral")[i % 3]
        elif task in ("qnli", "rte"):
            label = "entailment" if y else "not_entailment"
        else:
            label = str(y)
        rows.append(glue_row(task, i, a, b, label, test))
    return rows


GLUE_HEADERS = {
    "cola": (None, ("index", "sentence")),
    "sst": (("sentence", "label"), ("index", "sentence")),
    "mrpc": (("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
             ("index", "#1 ID", "#2 ID", "#1 String", "#2 String")),
    "sts": (("index", "genre", "filename", "year", "old_index", "source1", "source2",
             "sentence1", "sentence2", "score"),
            ("index", "genre", "filename", "year", "old_index", "sentence1", "sentence2")),
    "qqp": (("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
            ("id", "question1", "question2")),
    "mnli": (("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
              "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
              "sentence2", "label1", "gold_label"),
             ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
              "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
              "sentence2")),
    "qnli": (("index", "question", "sentence", "label"), ("index", "question", "sentence")),
    "rte": (("index", "sentence1", "sentence2", "label"), ("index", "sentence1", "sentence2")),
}


def write_glue(directory, task: str, n_train: int = 64, n_dev: int = 24, n_test: int = 10,
               seed: int = 0, examples=None):
    """A GLUE task folder with train/dev/test in the distribution's exact layout.

    examples: a function (rng, n) -> n (text_a, text_b, label) triples; default: synthetic
    sentences whose sentiment word decides the label (`glue_rows`)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    header, test_header = GLUE_HEADERS[task]
    spec = tasks.get_task(task)
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        for _, filename in spec.split_files(split):
            test = split == "test"
            rows = glue_rows(task, rng, n, test) if examples is None else [
                glue_row(task, i, a, b, label, test)
                for i, (a, b, label) in enumerate(examples(rng, n))]
            write_tsv(directory / filename, test_header if test else header, rows)
    return directory


CONTEXT = ("John Smith lives in Paris, the capital of France. He works at Acme Corp. "
           "The Seine is the river of Paris.")


QUESTIONS = [("q1", "who lives in paris ?", "John Smith"),
             ("q2", "where does john smith work ?", "Acme Corp"),
             ("q3", "what is the river of paris ?", "The Seine"),
             ("q4", "what city is the capital of france ?", "Paris")]


def write_squad(path, version: str, copies: int = 1, impossible: int = 0, bad: int = 0):
    """A SQuAD file in the official layout; `bad` answers carry a wrong answer_start."""
    qas = []
    for c in range(copies):
        for qid, question, answer in QUESTIONS:
            start = CONTEXT.find(answer)
            qas.append({"id": f"{qid}-{c}", "question": question,
                        "answers": [{"text": answer, "answer_start": start}]})
    for k in range(impossible):
        qas.append({"id": f"none-{k}", "question": "who works at london ?", "answers": [],
                    "plausible_answers": [{"text": "John Smith", "answer_start": 0}]})
    for k in range(bad):
        qas.append({"id": f"bad-{k}", "question": "who lives in paris ?",
                    "answers": [{"text": "John Smith", "answer_start": 5}]})
    if version == "2.0":
        for qa in qas:
            qa["is_impossible"] = not qa["answers"]
    path.write_text(json.dumps({"version": version, "data": [
        {"title": "Paris", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    return path


def write_conll(path, sentences):
    """CoNLL-2003 layout: word POS chunk NER, -DOCSTART- and blank lines."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for words, tags in sentences:
        lines += [f"{w} NN I-NP {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n")
    return path


NER = [(["John", "Smith", "lives", "in", "Paris", "."], ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]),
       (["Acme", "Corp", "works", "in", "London"], ["B-ORG", "I-ORG", "O", "O", "B-LOC"]),
       (["she", "lives", "in", "England"], ["O", "O", "O", "B-LOC"])]


def sigterm_when(command: list[str], marker: str, timeout: float = 300) -> tuple[int, str]:
    """Runs `command`, sends it SIGTERM once a line of its stderr holds `marker` (training
    runs), waits for it: (exit code, the rest of stderr). Fails, naming the marker, when no
    line holds it within `timeout` seconds (the run is killed, not left running)."""
    import time

    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.monotonic() + timeout, []
    for line in proc.stderr:
        if marker in line:
            break
        seen.append(line)
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no stderr line held {marker!r} in {timeout} s: "
                                 + "".join(seen[-20:]))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err
