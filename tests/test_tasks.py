"""Task readers and featurizers on fixtures in the official file formats, and bad input."""

import json

import numpy as np
import pytest

from electra_tf import tokenization
from electra_tf.data import features, squad, tasks
from electra_tf.errors import DataError

WORDS = ("the a is was not very good bad great awful movie film plot actor john smith paris "
         "london lives in works at acme corp where does who what city river and of to it "
         "he she this that one two seine france england capital").split()
PIECES = ("##s", "##ed", ".", ",", "?", "'", "-", "!")


def write_vocab(directory) -> tokenization.Vocab:
    path = directory / "vocab.txt"
    path.write_text("\n".join(tokenization.SPECIAL_TOKENS + tuple(WORDS) + PIECES) + "\n")
    return tokenization.load_vocab(str(path))


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


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tokenization.WordPieceTokenizer(write_vocab(tmp_path_factory.mktemp("vocab")))


@pytest.mark.parametrize("task", sorted(GLUE_HEADERS))
def test_glue_readers_read_the_distribution_layout(tmp_path, task):
    write_glue(tmp_path, task)
    spec = tasks.get_task(task)
    train = tasks.read_split(spec, str(tmp_path), "train")["train"]
    dev = tasks.read_split(spec, str(tmp_path), "dev")
    test = tasks.read_split(spec, str(tmp_path), "test")
    assert len(train) == 64 and all(len(e.texts) == len(spec.text_columns) for e in train)
    assert all(e.texts[0].endswith(" .") for e in train)  # the text, not another column
    assert sum(len(v) for v in dev.values()) == 24 * (2 if task == "mnli" else 1)
    assert all(len(e.texts) == len(spec.text_columns) and e.label is None
               for v in test.values() for e in v)
    labels = tasks.label_list(spec, train)
    tasks.check_labels(spec, labels, train, "train")
    if spec.kind == "classification":
        assert set(e.label for e in train) <= set(labels)
    else:
        assert all(0.0 <= float(e.label) <= 5.0 for e in train)


def test_unknown_task_name():
    with pytest.raises(DataError, match=r"unknown task 'glue-x'.*'generic'"):
        tasks.get_task("glue-x")
    assert tasks.get_task("SST-2").name == "sst" and tasks.get_task("STS-B").name == "sts"


def test_missing_column_names_file_and_header(tmp_path):
    write_glue(tmp_path, "rte")
    spec = tasks.generic_spec("mine", "classification", "tsv", ("sentence1", "premise"),
                              "label")
    with pytest.raises(DataError, match=r"train.tsv: no column 'premise'; the header has"):
        tasks.read_split(spec, str(tmp_path), "train")


def test_short_row_names_line(tmp_path):
    (tmp_path / "train.tsv").write_text("text\tlabel\ngood film\t1\nbad film\n")
    spec = tasks.generic_spec("mine", "classification", "tsv", ("text",), "label")
    with pytest.raises(DataError, match=r"train.tsv:3: row has 1 columns, column 'label'"):
        tasks.read_split(spec, str(tmp_path), "train")


def test_empty_split(tmp_path):
    (tmp_path / "train.tsv").write_text("text\tlabel\ngood\t1\n")
    (tmp_path / "dev.tsv").write_text("text\tlabel\n")
    spec = tasks.generic_spec("mine", "classification", "tsv", ("text",), "label")
    with pytest.raises(DataError, match=r"dev.tsv: the dev split is empty"):
        tasks.read_split(spec, str(tmp_path), "dev")


def test_dev_label_not_in_train(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"t": "good", "y": "pos"}\n{"t": "bad", "y": "neg"}\n')
    (tmp_path / "dev.jsonl").write_text('{"t": "fine", "y": "neutral"}\n')
    spec = tasks.generic_spec("mine", "classification", "jsonl", ("t",), "y")
    train = tasks.read_split(spec, str(tmp_path), "train")["train"]
    dev = tasks.read_split(spec, str(tmp_path), "dev")["dev"]
    labels = tasks.label_list(spec, train)
    assert labels == ("neg", "pos")
    with pytest.raises(DataError, match=r"label 'neutral', which is not in the training labels"):
        tasks.check_labels(spec, labels, dev, "dev")


def test_generic_csv_and_jsonl_pairs_and_spec_file(tmp_path):
    (tmp_path / "train.csv").write_text('a,b,score\n"good, very good",bad film,0.5\n'
                                        "good,good,1\n")
    spec = tasks.generic_spec("pairs", "regression", "csv", ("a", "b"), "score")
    train = tasks.read_split(spec, str(tmp_path), "train")["train"]
    assert train[0].texts == ("good, very good", "bad film") and train[0].label == "0.5"
    assert tasks.regression_range(spec, train) == (0.5, 1.0)
    (tmp_path / "spec.json").write_text(json.dumps({
        "name": "pairs", "kind": "regression", "format": "csv", "text_columns": ["a", "b"],
        "label_column": "score"}))
    assert tasks.spec_from_json(str(tmp_path / "spec.json")) == spec
    (tmp_path / "test.csv").write_text("a,b,score\ngood,bad,0.75\n")
    assert tasks.read_split(spec, str(tmp_path), "test")["test"][0].label is None
    (tmp_path / "labelled.json").write_text(json.dumps({
        "name": "pairs", "kind": "regression", "format": "csv", "text_columns": ["a", "b"],
        "label_column": "score", "test_labels": True}))
    labelled = tasks.spec_from_json(str(tmp_path / "labelled.json"))
    assert labelled.test_labels and labelled.labelled("test") and not spec.labelled("test")
    assert tasks.read_split(labelled, str(tmp_path), "test")["test"][0].label == "0.75"
    (tmp_path / "bad.json").write_text(json.dumps({"name": "x", "colums": ["a"]}))
    with pytest.raises(DataError, match="unknown task key"):
        tasks.spec_from_json(str(tmp_path / "bad.json"))


def test_long_texts_are_truncated_and_counted(tokenizer):
    long = " ".join(["good"] * 40)
    examples = [tasks.Example((long, "bad film"), "1"), tasks.Example(("good", "bad"), "0"),
                tasks.Example(("bad film", long), "0")]
    enc = features.encode_sentences(examples, tokenizer, 16, "classification", ("0", "1"))
    assert enc.truncated == 2
    ids, mask, seg = (enc.features[k] for k in ("input_ids", "input_mask", "segment_ids"))
    assert ids.shape == (3, 16) and mask[0].sum() == 16 and mask[1].sum() == 5
    vocab = tokenizer.vocab
    cls, sep, good, bad = (vocab.id(t) for t in ("[CLS]", "[SEP]", "good", "bad"))
    np.testing.assert_array_equal(ids[1, :6], [cls, good, sep, bad, sep, vocab.pad_id])
    np.testing.assert_array_equal(seg[1, :5], [0, 0, 0, 1, 1])
    # Longest first: the 40-piece text is cut, the 2-piece one kept whole (16 = 3 + 11 + 2).
    assert list(ids[0]).count(good) == 11 and seg[0].sum() == 3
    np.testing.assert_array_equal(enc.features["label_ids"], [1, 0, 0])


def test_tagging_labels_sit_on_first_sub_tokens(tokenizer):
    examples = [tasks.Example(("John", "plots", "in", "Paris"), ("B-PER", "O", "O", "B-LOC"))]
    labels = ("B-LOC", "B-PER", "O")
    enc = features.encode_tagging(examples, tokenizer, 12, labels)
    vocab = tokenizer.vocab
    pieces = [vocab.tokens[i] for i in enc.features["input_ids"][0][:7]]
    assert pieces == ["[CLS]", "john", "plot", "##s", "in", "paris", "[SEP]"]
    np.testing.assert_array_equal(enc.features["label_weights"][0][:7], [0, 1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(enc.features["label_ids"][0][[1, 2, 4, 5]], [1, 2, 2, 0])
    assert enc.word_starts == [[1, 2, 4, 5]]
    short = features.encode_tagging(examples, tokenizer, 5, labels)
    assert short.truncated == 2 and short.word_starts == [[1, 2]]  # "in Paris" did not fit
    logits = np.zeros((1, 5, 3))
    logits[0, 1, 1] = logits[0, 2, 2] = 1
    assert features.tags_from_logits(logits, short, examples, labels) == [
        ["B-PER", "O", "O", "O"]]


def test_conll_reader(tmp_path):
    examples = tasks.read_conll(str(write_conll(tmp_path / "train.txt", NER)))
    assert [(list(e.texts), list(e.label)) for e in examples] == [
        (w, t) for w, t in NER]


def test_squad_windows_map_answers_back_to_their_text(tmp_path, tokenizer):
    examples = tasks.read_squad(str(write_squad(tmp_path / "train.json", "1.1")))
    feats = squad.featurize(examples, tokenizer, 24, 6, 8, training=True)
    assert len(feats) > len(examples)  # the context needs several windows
    vocab = tokenizer.vocab
    found = {}
    for row, window in enumerate(feats.windows):
        s, e = feats.features["start_positions"][row], feats.features["end_positions"][row]
        ids = feats.features["input_ids"][row]
        assert ids[0] == vocab.cls_id and feats.features["segment_ids"][row][s] == (s > 0)
        if s:
            text = CONTEXT[window.spans[s][0]:window.spans[e][1]]
            found.setdefault(examples[window.example].id, set()).add(text)
    assert found == {qid + "-0": {answer} for qid, _, answer in QUESTIONS}
    # Every context piece has its max context in exactly one window.
    per_example = {}
    for window in feats.windows:
        spans = [window.spans[p] for p in window.max_context]
        per_example.setdefault(window.example, []).extend(spans)
    for spans in per_example.values():
        assert len(spans) == len(set(spans))


def test_squad_answer_not_matching_context_is_reported_and_skipped(tmp_path, tokenizer):
    examples = tasks.read_squad(str(write_squad(tmp_path / "train.json", "2.0", impossible=1,
                                                bad=2)))
    feats = squad.featurize(examples, tokenizer, 64, 32, 16, training=True)
    assert feats.skipped == ["bad-0", "bad-1"]
    kept = {examples[w.example].id for w in feats.windows}
    assert "bad-0" not in kept and "none-0" in kept and "q1-0" in kept
    impossible = [i for i, w in enumerate(feats.windows) if examples[w.example].id == "none-0"]
    assert all(feats.features["answerable"][i] == 0 and feats.features["start_positions"][i]
               == 0 for i in impossible)


def test_squad_decode_picks_valid_spans_and_null(tmp_path, tokenizer):
    examples = tasks.read_squad(str(write_squad(tmp_path / "dev.json", "2.0")))[:1]
    feats = squad.featurize(examples, tokenizer, 64, 32, 16, training=False)
    assert len(feats) == 1
    window = feats.windows[0]
    first = min(window.spans)  # "john"
    k = 3
    out = {"start_top_index": np.array([[0, first, first + 1]]),
           "start_top_log_probs": np.log(np.array([[0.5, 0.3, 0.2]])),
           "end_top_index": np.array([[[0, 1, 2], [first + 1, first, 0],
                                       [first + 1, first, 0]]]),
           "end_top_log_probs": np.log(np.array([[[0.5, 0.3, 0.2]] * k]).reshape(1, k, k)),
           "answerable_logits": np.array([1.5])}
    best, null, nbest = squad.decode(examples, feats, out, n_best_size=2)
    # Start 0 ([CLS]) and ends before starts are invalid. Valid: john..smith 0.3 x 0.5,
    # smith..smith 0.2 x 0.5, john..john 0.3 x 0.3: the n-best keeps the first two.
    assert best == {"q1-0": "John Smith"} and null == {"q1-0": -1.5}
    assert [e["text"] for e in nbest["q1-0"]] == ["John Smith", "Smith"]
    assert nbest["q1-0"][0]["probability"] > nbest["q1-0"][1]["probability"]


def test_squad_long_questions_are_cut_and_counted(tmp_path, tokenizer):
    examples = tasks.read_squad(str(write_squad(tmp_path / "dev.json", "1.1")))
    assert squad.featurize(examples, tokenizer, 64, 32, 8, training=False).truncated == 0
    # Pieces per question: 5, 6, 7, 8 -> three are longer than 5.
    cut = squad.featurize(examples, tokenizer, 64, 32, 5, training=False)
    assert cut.truncated == 3
    # [CLS] + 5 question pieces, then [SEP] at 6 in every window (q1 has exactly 5).
    assert all(ids[6] == tokenizer.vocab.sep_id for ids in cut.features["input_ids"])
