"""SQuAD 1.1 / 2.0: examples (read by tasks.read_squad) -> windowed features, and model outputs ->
answer texts.

Featurizing follows the official code: the question (at most max_query_length pieces) then a
window of the context, `[CLS] question [SEP] context-window [SEP]`, windows every doc_stride
pieces; each context piece is scored only in the window where it has the most context on both
sides ("max context"). Training answers outside a window point at [CLS] (position 0).
Unlike the official code, answers are mapped to pieces through the tokenizer's character
offsets instead of a whitespace split plus a re-alignment heuristic: a predicted span is then
exactly the context's text from its first piece's first character to its last piece's last.
A training answer whose text is not the context's text at `answer_start` is reported and
skipped (the official code skips these too).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf.data.tasks import Example
from electra_tf.errors import DataError
from electra_tf.tokenization import WordPieceTokenizer


@dataclasses.dataclass
class Window:
    """What decoding needs about one feature: its example and its context pieces' text spans."""

    example: int
    spans: dict[int, tuple[int, int]]  # position -> [char start, char end) in the context
    max_context: set[int]


@dataclasses.dataclass
class SquadFeatures:
    features: dict[str, np.ndarray]
    windows: list[Window]
    skipped: list[str]  # question ids whose training answer does not match the context
    truncated: int = 0  # questions cut to max_query_length

    def __len__(self) -> int:
        return len(self.windows)


def _pieces_with_spans(tokenizer: WordPieceTokenizer, texts: list[str]):
    """Each text -> (piece ids, [(char start, char end)]) via the tokenizer's byte offsets."""
    ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(texts))  # [B, (pieces)]
    out = []
    for text, row_ids, row_starts, row_ends in zip(texts, ids.to_list(), starts.to_list(),
                                                   ends.to_list()):
        char_of_byte = np.zeros(len(text.encode("utf-8")) + 1, np.int64)
        position = 0
        for i, ch in enumerate(text):
            width = len(ch.encode("utf-8"))
            char_of_byte[position:position + width] = i
            position += width
        char_of_byte[position] = len(text)
        # A piece may end inside a character (accent stripping): round out to its end.
        spans = [(int(char_of_byte[s]), int(char_of_byte[e - 1]) + 1)
                 for s, e in zip(row_starts, row_ends)]
        out.append((row_ids, spans))
    return out


def _answer_span(example: Example, spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The first gold answer's first and last context piece, or None if it does not match."""
    answer = example.label["answers"][0]
    context = example.texts[1]
    start = int(answer["answer_start"])
    end = start + len(answer["text"])
    if " ".join(context[start:end].split()) != " ".join(answer["text"].split()):
        return None
    inside = [i for i, (s, e) in enumerate(spans) if e > start and s < end]
    return (inside[0], inside[-1]) if inside else None


def featurize(examples: list[Example], tokenizer: WordPieceTokenizer, max_seq_length: int,
              doc_stride: int, max_query_length: int, training: bool) -> SquadFeatures:
    """Examples -> windows (see the module docstring); training adds start/end positions and
    `answerable` labels. Questions are cut to max_query_length pieces (counted)."""
    vocab = tokenizer.vocab
    contexts = sorted({e.texts[1] for e in examples})
    context_pieces = dict(zip(contexts, _pieces_with_spans(tokenizer, contexts)))
    questions = [ids for ids, _ in _pieces_with_spans(tokenizer, [e.texts[0] for e in examples])]
    columns = {k: [] for k in ("input_ids", "input_mask", "segment_ids", "start_positions",
                               "end_positions", "answerable")}
    windows, skipped, cut_questions = [], [], 0
    for index, example in enumerate(examples):
        query = questions[index]
        if len(query) > max_query_length:
            query, cut_questions = query[:max_query_length], cut_questions + 1
        doc_ids, doc_spans = context_pieces[example.texts[1]]
        answer = None
        impossible = example.label["is_impossible"] or not example.label["answers"]
        if training and not impossible:
            answer = _answer_span(example, doc_spans)
            if answer is None:
                skipped.append(example.id)
                continue
        budget = max_seq_length - len(query) - 3
        if budget < 1:
            raise DataError(f"max_seq_length={max_seq_length} leaves no room for the context "
                            f"after a {len(query)}-piece question; raise it or lower "
                            "max_query_length")
        starts = []
        offset = 0
        while True:
            length = min(len(doc_ids) - offset, budget)
            starts.append((offset, length))
            if offset + length >= len(doc_ids):
                break
            offset += min(length, doc_stride)
        best = {}  # doc piece -> (score, window) with the most context
        for w, (offset, length) in enumerate(starts):
            for j in range(offset, offset + length):
                score = min(j - offset, offset + length - 1 - j) + 0.01 * length
                if j not in best or score > best[j][0]:
                    best[j] = (score, w)
        for w, (offset, length) in enumerate(starts):
            ids = [vocab.cls_id, *query, vocab.sep_id, *doc_ids[offset:offset + length],
                   vocab.sep_id]
            first = len(query) + 2  # position of the window's first context piece
            segments = [0] * first + [1] * (length + 1)
            pad = max_seq_length - len(ids)
            spans = {first + j - offset: doc_spans[j] for j in range(offset, offset + length)}
            max_context = {first + j - offset for j in range(offset, offset + length)
                           if best[j][1] == w}
            start = end = 0
            if answer is not None and offset <= answer[0] and answer[1] < offset + length:
                start, end = first + answer[0] - offset, first + answer[1] - offset
            columns["input_ids"].append(ids + [vocab.pad_id] * pad)
            columns["input_mask"].append([1] * len(ids) + [0] * pad)
            columns["segment_ids"].append(segments + [0] * pad)
            columns["start_positions"].append(start)
            columns["end_positions"].append(end)
            columns["answerable"].append(float(not impossible))
            windows.append(Window(index, spans, max_context))
    if skipped:
        logging.warning("SQuAD: %d training answer(s) do not match their context and were "
                        "skipped, e.g. question id %s", len(skipped), skipped[0])
    dtypes = {"answerable": np.float32}
    features = {k: np.asarray(v, dtypes.get(k, np.int32)).reshape(
        (len(windows), -1) if k in ("input_ids", "input_mask", "segment_ids") else (-1,))
        for k, v in columns.items()}
    if not training:
        for key in ("start_positions", "end_positions", "answerable"):
            del features[key]
    return SquadFeatures(features, windows, skipped, cut_questions)


def decode(examples: list[Example], squad: SquadFeatures, outputs: dict[str, np.ndarray],
           n_best_size: int = 20, max_answer_length: int = 30) -> tuple[dict, dict, dict]:
    """Model outputs per window -> (best non-null answer, no-answer score, n-best) per question.

    outputs: start_top_log_probs [W, K], start_top_index [W, K], end_top_log_probs [W, K, K],
    end_top_index [W, K, K], and for 2.0 answerable_logits [W]. A span is valid when both ends
    are context pieces of the window, the start has its max context there, end >= start and
    it is at most max_answer_length pieces; its score is start + end log-probability (the
    official joint-prediction score). The no-answer score of a question is the smallest
    "unanswerable" logit (-answerable_logits) over its windows, as the official code.
    """
    candidates: dict[int, list] = {}
    null_scores: dict[int, float] = {}
    for w, window in enumerate(squad.windows):
        found = candidates.setdefault(window.example, [])
        if "answerable_logits" in outputs:
            score = -float(outputs["answerable_logits"][w])
            null_scores[window.example] = min(null_scores.get(window.example, score), score)
        for i, start in enumerate(outputs["start_top_index"][w]):
            if start not in window.spans or start not in window.max_context:
                continue
            for j, end in enumerate(outputs["end_top_index"][w, i]):
                if end not in window.spans or end < start or end - start + 1 > max_answer_length:
                    continue
                score = float(outputs["start_top_log_probs"][w, i]
                              + outputs["end_top_log_probs"][w, i, j])
                found.append((score, window.spans[start][0], window.spans[end][1]))
    best, nbest, null = {}, {}, {}
    for index, example in enumerate(examples):
        context = example.texts[1]
        entries, seen = [], set()
        for score, s, e in sorted(candidates.get(index, []), reverse=True):
            text = context[s:e]
            if text in seen:
                continue
            seen.add(text)
            entries.append({"text": text, "score": score})
            if len(entries) >= n_best_size:
                break
        if entries:
            scores = np.asarray([x["score"] for x in entries])
            probs = np.exp(scores - scores.max())
            for entry, p in zip(entries, probs / probs.sum()):
                entry["probability"] = float(p)
        best[example.id] = entries[0]["text"] if entries else ""
        nbest[example.id] = entries
        if index in null_scores:
            null[example.id] = null_scores[index]
    return best, null, nbest
