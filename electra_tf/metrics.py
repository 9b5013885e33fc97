"""Fine-tuning metrics: GLUE's, the official SQuAD 1.1/2.0 scoring, and span-level F1 for tagging.

Plain NumPy/Python on host arrays (evaluation runs once per epoch, not per step). The SQuAD
functions implement the rules of the official evaluation scripts (v1.1 and v2.0): answers are
normalized (lower case, punctuation and the articles a/an/the removed, whitespace collapsed),
EM and token F1 are the best over the gold answers, scores are percentages; 2.0 counts a
question without gold answers as answered correctly only by the empty string.
Span F1 follows conlleval: a chunk is a maximal run of one type, and a predicted chunk counts
only when its start, end and type are all right.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Mapping, Sequence

import numpy as np

# --- classification and regression ----------------------------------------------------------

def accuracy(labels: Sequence[int], predictions: Sequence[int]) -> float:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return float(np.mean(labels == predictions)) if labels.size else float("nan")


def f1_binary(labels: Sequence[int], predictions: Sequence[int], positive: int = 1) -> float:
    """F1 of the positive class (GLUE's MRPC and QQP F1); 0 when nothing is positive."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    tp = np.sum((predictions == positive) & (labels == positive))
    fp = np.sum((predictions == positive) & (labels != positive))
    fn = np.sum((predictions != positive) & (labels == positive))
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def macro_f1(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Unweighted mean of per-class F1 over the classes seen in labels or predictions."""
    classes = np.union1d(np.asarray(labels), np.asarray(predictions))
    return float(np.mean([f1_binary(labels, predictions, c) for c in classes]))


def matthews_corrcoef(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Matthews correlation (multi-class form of Gorodkin, 2004); 0 when undefined (CoLA)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = np.union1d(labels, predictions)
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), np.float64)
    for t, p in zip(labels, predictions):
        confusion[index[t], index[p]] += 1
    true_sums, pred_sums = confusion.sum(1), confusion.sum(0)
    n, correct = confusion.sum(), np.trace(confusion)
    cov_tp = correct * n - true_sums @ pred_sums
    denom = np.sqrt((n * n - pred_sums @ pred_sums) * (n * n - true_sums @ true_sums))
    return float(cov_tp / denom) if denom else 0.0


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of the ranks (ties averaged)."""
    return pearson(_ranks(np.asarray(x, np.float64)), _ranks(np.asarray(y, np.float64)))


CLASSIFICATION_METRICS = {"accuracy": accuracy, "f1": f1_binary, "macro_f1": macro_f1,
                          "mcc": matthews_corrcoef}
REGRESSION_METRICS = {"pearson": pearson, "spearman": spearman}


def score(names: Sequence[str], labels, predictions) -> dict[str, float]:
    """{name: value} for metric names of CLASSIFICATION_METRICS or REGRESSION_METRICS."""
    table = {**CLASSIFICATION_METRICS, **REGRESSION_METRICS}
    return {name: table[name](labels, predictions) for name in names}


# --- SQuAD (official scoring rules) ------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, drop articles, collapse whitespace (the official rule)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str, empty_matches_empty: bool) -> float:
    """Token-overlap F1 after normalization.

    empty_matches_empty: the 2.0 rule (an empty answer scores 1 against an empty gold, else 0);
    1.1 has no empty golds and scores an empty prediction 0.
    """
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if empty_matches_empty and (not pred or not ref):
        return float(pred == ref)
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_questions(dataset: Sequence[Mapping]
                    ) -> tuple[dict[str, list[str]], dict[str, bool]]:
    """The `data` list of a SQuAD JSON -> ({question id: gold texts}, {question id: has answer}).

    As the 2.0 script: gold texts that normalize to nothing are dropped ([''] when none is
    left); "has an answer" means the `answers` list is not empty.
    """
    golds, has_answer = {}, {}
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = qa.get("answers", [])
                golds[qa["id"]] = [a["text"] for a in answers
                                   if normalize_answer(a["text"])] or [""]
                has_answer[qa["id"]] = bool(answers)
    return golds, has_answer


def squad_v1_scores(dataset: Sequence[Mapping], predictions: Mapping[str, str]) -> dict:
    """SQuAD 1.1: {"exact_match", "f1"} in percent over all questions (missing ones score 0)."""
    golds, _ = squad_questions(dataset)
    em = f1 = 0.0
    for qid, answers in golds.items():
        if qid not in predictions:
            continue
        em += max(exact_match(predictions[qid], g) for g in answers)
        f1 += max(token_f1(predictions[qid], g, empty_matches_empty=False) for g in answers)
    return {"exact_match": 100.0 * em / len(golds), "f1": 100.0 * f1 / len(golds)}


def squad_v2_scores(dataset: Sequence[Mapping], predictions: Mapping[str, str],
                    na_probs: Mapping[str, float] | None = None,
                    na_prob_threshold: float = 1.0) -> dict:
    """SQuAD 2.0: exact and f1 (percent), split into HasAns/NoAns, and the best thresholds.

    A question whose no-answer score `na_probs[qid]` exceeds `na_prob_threshold` counts as
    answered with "" (the official script's --na-prob-thresh). `best_*` report the score at the
    threshold that would have been best on this set, and that threshold (official find_best).
    """
    golds, has_answer = squad_questions(dataset)
    na_probs = na_probs or {qid: 0.0 for qid in predictions}
    raw_em, raw_f1 = {}, {}
    for qid, answers in golds.items():
        if qid not in predictions:
            continue
        raw_em[qid] = max(exact_match(predictions[qid], g) for g in answers)
        raw_f1[qid] = max(token_f1(predictions[qid], g, empty_matches_empty=True)
                          for g in answers)

    def thresholded(raw):
        return {qid: (float(not has_answer[qid]) if na_probs.get(qid, 0.0) > na_prob_threshold
                      else value) for qid, value in raw.items()}

    em, f1 = thresholded(raw_em), thresholded(raw_f1)
    # As the official script: totals over the questions that have a prediction.
    out = {"exact": 100.0 * sum(em.values()) / len(em),
           "f1": 100.0 * sum(f1.values()) / len(em), "total": len(em)}
    for name, keep in (("HasAns", True), ("NoAns", False)):
        ids = [q for q in em if has_answer[q] == keep]
        if ids:
            out[f"{name}_exact"] = 100.0 * sum(em[q] for q in ids) / len(ids)
            out[f"{name}_f1"] = 100.0 * sum(f1[q] for q in ids) / len(ids)
            out[f"{name}_total"] = len(ids)
    for name, raw in (("exact", raw_em), ("f1", raw_f1)):
        best, thresh = _best_threshold(raw, predictions, na_probs, has_answer)
        out[f"best_{name}"], out[f"best_{name}_thresh"] = best, thresh
    return out


def _best_threshold(raw: Mapping[str, float], predictions: Mapping[str, str],
                    na_probs: Mapping[str, float], has_answer: Mapping[str, bool]):
    """Sweeps the threshold up through the sorted no-answer scores, keeping the best total.

    Below every score all questions are abstained on: the total is the no-answer count. Raising
    the threshold past a question's score keeps its prediction: + its score if it has an answer,
    -1 if it has none and we answered, 0 if it has none and we said "".
    """
    current = best = float(sum(not v for v in has_answer.values()))
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in raw:
            continue
        if has_answer[qid]:
            current += raw[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / len(raw), best_thresh


# --- tagging: span-level F1 (conlleval) --------------------------------------------------------

def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, kind = tag.split("-", 1)
    return prefix.upper(), kind


def chunks(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """(start, end inclusive, type) of every chunk in a BIO / IOB1 / IOBES tag sequence."""
    out, start, kind = set(), None, ""
    prev_prefix = "O"
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, typ = _split_tag(tag)
        ends = start is not None and (
            prefix in ("O", "B", "S") or typ != kind or prev_prefix in ("E", "S"))
        if ends:
            out.add((start, i - 1, kind))
            start = None
        begins = prefix in ("B", "S") or (prefix in ("I", "E") and start is None)
        if begins and prefix != "O":
            start, kind = i, typ
        prev_prefix = prefix
    return out


def span_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Micro precision, recall and F1 (fractions) of chunks over sentences (conlleval)."""
    correct = n_pred = n_gold = 0
    for g, p in zip(gold, predicted):
        gold_chunks, pred_chunks = chunks(g), chunks(p)
        correct += len(gold_chunks & pred_chunks)
        n_pred += len(pred_chunks)
        n_gold += len(gold_chunks)
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
