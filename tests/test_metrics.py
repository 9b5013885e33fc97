"""Metrics against scipy/sklearn, the official SQuAD scoring rules and conlleval's chunking."""

import json

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from electra_tf import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    preds = np.where(rng.random(200) < 0.7, labels, 1 - labels)
    assert metrics.accuracy(labels, preds) == pytest.approx(skm.accuracy_score(labels, preds))
    assert metrics.f1_binary(labels, preds) == pytest.approx(skm.f1_score(labels, preds))
    assert metrics.matthews_corrcoef(labels, preds) == pytest.approx(
        skm.matthews_corrcoef(labels, preds))
    three = rng.integers(0, 3, 150)
    guess = np.where(rng.random(150) < 0.5, three, rng.integers(0, 3, 150))
    assert metrics.matthews_corrcoef(three, guess) == pytest.approx(
        skm.matthews_corrcoef(three, guess))
    assert metrics.macro_f1(three, guess) == pytest.approx(
        skm.f1_score(three, guess, average="macro"))


def test_degenerate_classification_cases_match_sklearn():
    ones = np.ones(10, int)
    with pytest.warns(UserWarning):  # sklearn warns about the single label; we need no labels=
        reference = skm.matthews_corrcoef(ones, ones)
    assert metrics.matthews_corrcoef(ones, ones) == reference == 0.0
    zeros = np.zeros(10, int)
    assert metrics.f1_binary(zeros, zeros) == skm.f1_score(zeros, zeros, zero_division=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_correlations_agree_with_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=300)
    y = 0.6 * x + rng.normal(size=300)
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    # STS-B style gold scores have many ties: average ranks, as scipy.
    gold = np.round(rng.uniform(0, 5, 300) * 5) / 5
    assert metrics.spearman(gold, y) == pytest.approx(stats.spearmanr(gold, y)[0], abs=1e-12)


# --- SQuAD: fixtures in the official JSON layout; expectations derived from the rules ---------

def squad_file(tmp_path, version, questions):
    """questions: (id, [answer texts], is_impossible) -> an official-format dataset file."""
    context = "The Normans were in Normandy, a region in France. The Eiffel tower is tall."
    qas = []
    for qid, answers, impossible in questions:
        qa = {"id": qid, "question": f"q {qid}?",
              "answers": [{"text": a, "answer_start": max(0, context.find(a))} for a in answers]}
        if version == "v2.0":
            qa["is_impossible"] = impossible
        qas.append(qa)
    path = tmp_path / f"dev-{version}.json"
    path.write_text(json.dumps({"version": version.lstrip("v"), "data": [
        {"title": "Normans", "paragraphs": [{"context": context, "qas": qas}]}]}))
    return json.loads(path.read_text())["data"]


def test_squad_normalization_rules():
    assert metrics.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert metrics.normalize_answer("an apple, a pear and THE fig") == "apple pear and fig"
    assert metrics.normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_squad_v1_exact_match_and_f1(tmp_path):
    data = squad_file(tmp_path, "v1.1", [
        ("a", ["in France", "France"], False),  # best over golds: EM 1
        ("b", ["Normandy"], False),             # "normandy region": F1 2*(1/2*1)/(3/2) = 2/3
        ("c", ["the Normans"], False),          # articles and case ignored: EM 1
        ("d", ["tall"], False),                 # wrong: 0
        ("e", ["Eiffel tower"], False)])        # missing prediction: counts as 0
    preds = {"a": "France", "b": "Normandy, a region", "c": "NORMANS.", "d": "short"}
    got = metrics.squad_v1_scores(data, preds)
    assert got["exact_match"] == pytest.approx(100 * 2 / 5)
    assert got["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0 + 0) / 5)


def test_squad_v1_empty_prediction_scores_zero(tmp_path):
    data = squad_file(tmp_path, "v1.1", [("a", ["France"], False)])
    assert metrics.squad_v1_scores(data, {"a": ""}) == {"exact_match": 0.0, "f1": 0.0}


def test_squad_v2_no_answer_rules_and_threshold(tmp_path):
    data = squad_file(tmp_path, "v2.0", [
        ("a", ["France"], False), ("b", ["Normandy"], False),
        ("n1", [], True), ("n2", [], True)])
    preds = {"a": "France", "b": "in Normandy", "n1": "", "n2": "Eiffel"}
    na = {"a": 0.1, "b": 0.6, "n1": 0.9, "n2": 0.3}
    raw = metrics.squad_v2_scores(data, preds)  # no threshold: predictions as given
    # a: 1/1; b: EM 0, F1 2*(1/2*1)/(3/2)=2/3 ("in" is not an article); n1: "" vs "" -> 1;
    # n2: text vs no answer -> 0.
    assert raw["exact"] == pytest.approx(100 * 2 / 4)
    assert raw["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4)
    assert raw["HasAns_exact"] == pytest.approx(50.0) and raw["NoAns_f1"] == pytest.approx(50.0)
    thr = metrics.squad_v2_scores(data, preds, na, na_prob_threshold=0.5)
    # b (0.6) and n1 (0.9) abstain: b -> 0, n1 -> 1; a and n2 keep their predictions.
    assert thr["exact"] == pytest.approx(100 * (1 + 0 + 1 + 0) / 4)
    assert thr["f1"] == pytest.approx(100 * (1 + 0 + 1 + 0) / 4)
    # Best threshold sweep (sorted by na: a .1, n2 .3, b .6, n1 .9; start = 2 no-answers):
    # a: 3 (best, thresh .1); n2 answered wrongly: 2; b: 2 + 2/3 (F1) or 2 (EM); n1: "" -> same.
    assert thr["best_exact"] == pytest.approx(100 * 3 / 4)
    assert thr["best_exact_thresh"] == pytest.approx(0.1)
    assert thr["best_f1"] == pytest.approx(100 * 3 / 4)


def test_squad_v2_gold_that_normalizes_to_nothing_is_dropped(tmp_path):
    data = squad_file(tmp_path, "v2.0", [("a", ["The", "France"], False)])
    golds, has_answer = metrics.squad_questions(data)
    assert golds == {"a": ["France"]} and has_answer == {"a": True}


# --- span F1 (conlleval) ---------------------------------------------------------------------

def test_chunks_bio_iob1_iobes():
    assert metrics.chunks(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"]) == {
        (0, 1, "PER"), (3, 3, "LOC"), (4, 4, "LOC"), (5, 5, "ORG")}
    # IOB1 (CoNLL-2003 original): I- after O or another type starts a chunk.
    assert metrics.chunks(["I-PER", "I-PER", "I-LOC", "O", "I-MISC"]) == {
        (0, 1, "PER"), (2, 2, "LOC"), (4, 4, "MISC")}
    assert metrics.chunks(["S-PER", "B-LOC", "E-LOC", "E-LOC", "O"]) == {
        (0, 0, "PER"), (1, 2, "LOC"), (3, 3, "LOC")}
    assert metrics.chunks(["B-NP", "I-NP", "B-VP", "B-NP", "I-NP", "I-NP"]) == {
        (0, 1, "NP"), (2, 2, "VP"), (3, 5, "NP")}


def test_span_f1_counts_only_exact_chunks():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    got = metrics.span_f1(gold, pred)
    # gold chunks 3; predicted 4 (PER 0-0 is wrong: gold is 0-1); correct: LOC, ORG = 2.
    assert got["precision"] == pytest.approx(2 / 4) and got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert metrics.span_f1([["O"]], [["O"]])["f1"] == 0.0


# --- pretraining: the discriminator's AUC and base-rate ratio ----------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_exact_auc_agrees_with_sklearn_with_ties_and_padding(seed):
    from electra_tf import losses

    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 2, 3000)  # -1 = padding, left out
    scores = np.round(rng.normal(labels * 0.3, 1.0), 1)  # rounded: many ties
    keep = labels >= 0
    expected = skm.roc_auc_score(labels[keep], scores[keep])
    assert losses.exact_auc(scores, labels) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(losses.exact_auc(scores[labels == 1], labels[labels == 1]))


def _disc_outputs(logits, labels, mask):
    import tensorflow as tf

    zeros = tf.zeros([len(logits), 1], tf.int32)
    batch = {"input_mask": tf.constant(mask), "masked_lm_weights": tf.zeros([len(logits), 1]),
             "masked_lm_ids": zeros}
    out = {"disc_logits": tf.constant(logits, tf.float32), "is_replaced": tf.constant(labels),
           "mlm_logits": tf.zeros([len(logits), 1, 5]), "sampled_ids": zeros}
    return out, batch


def test_pretraining_auc_is_exact_near_the_base_rate():
    # A discriminator whose probabilities all sit within 1e-4 of the 15% base rate but rank
    # every replaced token above every original one: AUC 1.0. A 1,000-bin histogram of the
    # probability put them in one bin and reported 0.5.
    from electra_tf import losses

    rng = np.random.default_rng(0)
    labels = (rng.random((16, 32)) < 0.15).astype(np.int32)
    mask = np.ones_like(labels)
    mask[:, 28:] = 0
    base = np.log(0.15 / 0.85)
    logits = base + 1e-4 * labels + 1e-5 * rng.random(labels.shape)
    out, batch = _disc_outputs(logits, labels, mask)
    sums = {k: v.numpy() for k, v in losses.metric_sums(out, batch).items()}
    sample = {k: v.numpy() for k, v in losses.disc_sample(out, batch, 16).items()}
    np.testing.assert_array_equal(sample["disc_labels"], np.where(mask == 1, labels, -1))
    summary = losses.summarize_metrics(losses.accumulate(losses.accumulate({}, {**sums, **sample}),
                                                         {**sums, **sample}))
    assert summary["disc_auc"] == 1.0
    # it answers the base rate: its loss is the entropy of the replaced fraction
    assert summary["disc_base_ratio"] == pytest.approx(1.0, abs=0.02)


def test_base_ratio_falls_when_the_discriminator_knows():
    from electra_tf import losses

    labels = np.array([[1, 0, 0, 0, 0, 0, 0, 1]] * 4, np.int32)
    out, batch = _disc_outputs(np.where(labels == 1, 4.0, -4.0), labels, np.ones_like(labels))
    summary = losses.summarize_metrics({k: v.numpy() for k, v in
                                        losses.metric_sums(out, batch).items()})
    assert summary["disc_base_ratio"] < 0.05 and np.isnan(summary["disc_auc"])  # no sample


def test_input_tokens_count_the_text_for_both_objectives_and_give_the_row_fill():
    # Real-token throughput reads input_tokens: every non-padding position, also for the
    # masked-LM baseline, whose discriminator counts ("tokens") are zero by design.
    from electra_tf import losses, pretraining

    mask = np.zeros((4, 8), np.int32)
    for row, length in enumerate((8, 5, 3, 1)):
        mask[row, :length] = 1
    out, batch = _disc_outputs(np.zeros((4, 8)), np.zeros((4, 8), np.int32), mask)
    electra = {k: v.numpy() for k, v in losses.metric_sums(out, batch).items()}
    mlm_out = {k: v for k, v in out.items() if k not in ("disc_logits", "is_replaced")}
    mlm = {k: v.numpy() for k, v in losses.metric_sums(mlm_out, batch).items()}
    assert electra["input_tokens"] == mlm["input_tokens"] == 17
    assert electra["tokens"] == 17 and mlm["tokens"] == 0
    assert set(losses.metric_shapes()) == set(electra)
    sums = losses.accumulate(losses.accumulate({}, electra), electra)  # two steps
    sums.update(loss=0.0, mlm_loss=0.0, disc_loss=0.0)
    assert pretraining._summarize(sums, 2, None, positions=32)["row_fill"] == 17 / 32


def test_a_run_ending_with_an_idle_discriminator_warns(caplog):
    from electra_tf import pretraining

    with caplog.at_level("WARNING"):
        pretraining._warn_if_discriminator_idle({"disc_base_ratio": 0.8, "disc_auc": 0.8})
        assert not caplog.records
        pretraining._warn_if_discriminator_idle({"disc_base_ratio": 0.99, "disc_auc": 0.55})
    assert "0.99 of the base rate" in caplog.text
