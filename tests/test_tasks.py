"""Task readers and featurizers on fixtures in the official file formats, and bad input."""

import json

import numpy as np
import pytest
from helpers import (
    CONTEXT,
    GLUE_HEADERS,
    NER,
    QUESTIONS,
    TASK_VOCAB,
    write_conll,
    write_glue,
    write_squad,
    write_vocab,
)

from electra_tf import tokenization
from electra_tf.data import features, squad, tasks
from electra_tf.errors import DataError


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab = write_vocab(tmp_path_factory.mktemp("vocab"), TASK_VOCAB)
    return tokenization.WordPieceTokenizer(vocab)


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
    assert enc.windows == [(0, 0, 4)]


def test_long_tagging_sentences_become_overlapping_windows_read_at_most_context(tokenizer):
    """A sentence over max_seq_length is not cut: windows of whole words cover it, every word
    is trained in each window holding it and read from the one where it has most context."""
    words = ("John", "plots", "in", "Paris", "and", "London", "with", "Acme", "Corp")
    tags = ("B-PER", "O", "O", "B-LOC", "O", "B-LOC", "O", "B-ORG", "I-ORG")
    examples = [tasks.Example(words, tags), tasks.Example(("in",), ("O",))]
    labels = ("B-LOC", "B-ORG", "B-PER", "I-ORG", "O")
    enc = features.encode_tagging(examples, tokenizer, 6, labels)  # 4 pieces per window
    # "plots" is 2 pieces: windows [John plots in], [in Paris and London], ...
    assert enc.windows == [(0, 0, 3), (0, 2, 6), (0, 4, 8), (0, 6, 9), (1, 0, 1)]
    covered = [w for _, first, end in enc.windows[:4] for w in range(first, end)]
    assert set(covered) == set(range(len(words))) and enc.truncated == 0
    for row, (_, first, end) in enumerate(enc.windows[:4]):  # every word labelled in each
        starts = enc.word_starts[row]
        assert len(starts) == end - first
        assert [labels[i] for i in enc.features["label_ids"][row][starts]] == list(
            tags[first:end])
        assert enc.features["label_weights"][row].sum() == end - first
    # logits that name each window in its tags: a word takes the window with most context
    logits = np.zeros((len(enc), 6, len(labels)))
    for row, starts in enumerate(enc.word_starts):
        logits[row, starts, row % len(labels)] = 1
    read = features.tags_from_logits(logits, enc, examples, labels)
    # "in" (word 2): 0 words on one side in windows 0 and 1 -> the first; "Paris" (3): 1 in
    # window 1; "and" (4): 0 in windows 1 and 2 -> window 1; "London" (5): 1 in window 2
    assert read[0][:6] == [labels[0], labels[0], labels[0], labels[1], labels[1], labels[2]]
    assert read[1] == [labels[4]]


def test_tag_windows():
    assert features.tag_windows([1] * 5, 10) == [(0, 5)]
    assert features.tag_windows([], 10) == []
    assert features.tag_windows([3, 20, 1], 4) == [(0, 1), (1, 2), (2, 3)]  # a word alone
    for counts in ([1] * 50, [2, 1, 3, 1, 1, 2] * 9):
        windows = features.tag_windows(counts, 7)
        assert windows[0][0] == 0 and windows[-1][1] == len(counts)
        for (a, b), (c, d) in zip(windows, windows[1:]):
            assert a < c <= b < d  # they overlap or touch, and move on
        assert all(sum(counts[a:b]) <= 7 for a, b in windows)


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
