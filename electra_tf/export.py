"""SavedModel export of the discriminator encoder or a fine-tuned TaskModel, then verification.

Signatures (B batch, L = max_seq_length, H hidden, C labels):
  serving_default  text [B] string -> outputs (below). One segment: `[CLS] text [SEP]`.
  serving_pair     text, text_pair [B] string -> outputs, `[CLS] text [SEP] text_pair [SEP]`
                   (SQuAD: question, context; this is then also serving_default).
  serving_ids      input_ids, input_mask, segment_ids [B, L'] int32 (L' <= the model's
                   max_position_embeddings) -> outputs, for clients that tokenize themselves.
  tokenize / tokenize_pair   the same text inputs -> input_ids, input_mask, segment_ids [B, L].
Outputs:
  encoder          sequence_output [B, L, H], cls_output [B, H] (the [CLS] vector), input_mask.
  classification   logits [B, C], probabilities [B, C], label [B] (the most probable name),
                   label_names [B, C] (the names, one row per example).
  regression       predictions [B] (in the training labels' range).
  tagging          logits [B, L, C], probabilities, labels [B, L] (names), tokens [B, L],
                   word_start [B, L] (1 at the first piece of a word: where a tag is read);
                   the entities those tags make (the chunks span F1 counts, N per batch):
                   entity_type [B, N] ("PER"; "" padding), entity_first, entity_last [B, N]
                   (their first and last piece; -1 padding) and, from raw text,
                   entity_start, entity_end [B, N] (character offsets [start, end) into the
                   text) and entity_text [B, N].
  squad            start_logits, end_logits [B, L] (+ answerable_logits [B]), tokens,
                   answer_start, answer_end [B] (the span fine-tuning's evaluation would
                   pick in this window: best start + end log-probability of the beam, at
                   most 30 pieces of the context).
Raw text is tokenized in the graph by the same tokenizer class the data builder and fine-tuning
use (tensorflow-text; lower-casing as in training), truncated as they do: one text to L - 2
pieces; a pair longest-first to L - 3 (SQuAD: the question to max_query_length, then the
context). The vocabulary travels as an asset (assets/vocab.txt: the `tokens` outputs are read
from it, clients can fetch it); the tokenizer (the builder's, today tensorflow-text's
FastBertTokenizer) also holds its own compiled copy. assets.extra/electra_export.json records
the kind, label names, lengths, lower-casing and model config.

Loading needs `import tensorflow_text` first (its tokenizer ops are custom ops):
  import tensorflow_text  # noqa: F401
  model = tf.saved_model.load(path); model.signatures["serving_default"](text=tf.constant([..]))
TF Serving: the model server must link tensorflow-text's ops: FastBertNormalize,
FastWordpieceTokenizeWithOffsets and NormalizeUTF8 (older model servers lacked them:
tensorflow/serving#2064);
otherwise serve `serving_ids` and tokenize on the client. XLA exports (`jit_compile`) also
need the server's --xla_cpu_compilation_enabled.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf import spans
from electra_tf.errors import ExportError, VocabError
from electra_tf.heads import answer_beam
from electra_tf.kinds import CLASSIFICATION, ENCODER, REGRESSION, SQUAD, TAGGING
from electra_tf.models import Discriminator, ElectraPretrainer
from electra_tf.tokenization import Vocab, WordPieceTokenizer, casing_mismatch

# Max difference allowed between the reloaded and the in-memory signatures, times
# max(1, |value|) for each value: the SQuAD heads' masked logits sit near -1000, where float32
# values are 6e-5 apart, while near 1 the tolerance stays 1e-5.
TOLERANCE = 1e-5
# ... and between the reloaded graph and the model run eagerly, op by op: the graph fuses ops
# (oneDNN), so float32 sums run in another order; with real weights (hidden states up to ~6 in
# all-MiniLM-L6-v2) that reaches ~1.2e-5 of the values' scale after 6 layers (~7e-5 for any
# value, small ones too).
EAGER_TOLERANCE = 1e-4
INFO_FILE = "electra_export.json"  # in assets.extra: kind, labels, lengths, config
MAX_ANSWER_LENGTH = 30


def _kind(model) -> str:
    """A TaskModel's task kind; "encoder" for a Discriminator (no task head)."""
    return getattr(model, "kind", ENCODER)


class ServingModule(tf.Module):
    """The exported object: the model, the tokenizer, the vocabulary asset and the signatures.

    `model` is a Discriminator (encoder export) or a TaskModel (fine-tuned; its discriminator
    is `model.discriminator`); the variables are saved under `discriminator` or `model`.
    """

    def __init__(self, model, vocab: Vocab, vocab_path: str, lower_case: bool,
                 max_seq_length: int, label_names: tuple[str, ...] = (),
                 regression_range: tuple[float, float] = (0.0, 1.0),
                 max_query_length: int = 64, jit_compile: bool = False):
        super().__init__(name="electra_serving")
        self.jit_compile = jit_compile
        self.kind = _kind(model)
        if self.kind == ENCODER:
            self.discriminator = model
        else:
            self.model = model
        self.vocab_file = tf.saved_model.Asset(vocab_path)
        self.text_tokenizer = WordPieceTokenizer(vocab, lower_case)
        # WordPieceTokenizer is a plain class: track its tensorflow-text module (and any lookup
        # table in it) so that the SavedModel captures the tokenizer's resources.
        self._tokenizer_modules = [v for v in vars(self.text_tokenizer).values()
                                   if isinstance(v, tf.Module)]
        self.id_to_token = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocab_file, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE), default_value="[UNK]")
        self.max_seq_length = max_seq_length
        self.max_query_length = max_query_length
        self.label_names = tf.constant(list(label_names) or [""], tf.string)
        self.regression_low, self.regression_high = map(float, regression_range)
        self.cls_id, self.sep_id, self.pad_id = vocab.cls_id, vocab.sep_id, vocab.pad_id

    @property
    def _forward_model(self):
        return self.discriminator if self.kind == ENCODER else self.model

    # --- tokenization (the data builder's and fine-tuning's rules) ---------------------------

    def _pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        return tf.cast(self.text_tokenizer.tokenize(texts), tf.int32)  # [B, (n)]

    def _pack(self, first: tf.RaggedTensor, second: tf.RaggedTensor | None) -> dict:
        """Pieces -> `[CLS] first [SEP] (second [SEP])` padded to L, with dense gathers (ragged
        concatenation and masking trace and run several times slower)."""
        length = self.max_seq_length
        a = tf.cast(first.row_lengths(), tf.int32)[:, tf.newaxis]  # [B, 1]
        first = first.to_tensor(self.pad_id, shape=[None, length])  # [B, L], cut or padded
        position = tf.range(length)[tf.newaxis]  # [1, L]
        if second is None:
            keep_a = tf.minimum(a, length - 2)
            keep_b = tf.zeros_like(keep_a) - 1  # no second segment, no second [SEP]
        else:
            budget = length - 3
            b = tf.cast(second.row_lengths(), tf.int32)[:, tf.newaxis]
            if self.kind == SQUAD:  # the question first, as SQuAD featurization
                keep_a = tf.minimum(a, self.max_query_length)
            else:  # longest first, one piece at a time (features.truncate_pair), closed form
                keep_a = tf.minimum(a, tf.maximum(budget // 2, budget - b))
            keep_b = tf.minimum(b, budget - keep_a)
            second = second.to_tensor(self.pad_id, shape=[None, length])
        from_first = tf.gather(first, tf.maximum(tf.range(length) - 1, 0), axis=1)  # [B, L]
        ids = tf.where(position == 0, self.cls_id, self.pad_id)
        ids = tf.where((position >= 1) & (position <= keep_a), from_first, ids)
        ids = tf.where(position == keep_a + 1, self.sep_id, ids)
        end = keep_a + 1  # position of the first [SEP]
        in_second = (position > end) & (position <= end + keep_b)
        if second is not None:
            index = tf.clip_by_value(position - end - 1, 0, length - 1)
            ids = tf.where(in_second, tf.gather(second, index, batch_dims=1), ids)
        last_sep = (position == end + keep_b + 1) & (keep_b >= 0)
        ids = tf.where(last_sep, self.sep_id, ids)
        mask = tf.cast(position <= tf.where(keep_b >= 0, end + keep_b + 1, end), tf.int32)
        segments = tf.cast(in_second | last_sep, tf.int32)
        return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}

    def _features_with_offsets(self, text: tf.Tensor) -> tuple[dict, tf.Tensor, tf.Tensor]:
        """One segment's features and, per position, the character range [start, end) of its
        piece in the raw text [B, L] int32 (-1 at [CLS], [SEP] and padding)."""
        ids, byte_starts, byte_ends = self.text_tokenizer.tokenize_with_offsets(text)
        features = self._pack(tf.cast(ids, tf.int32), None)
        char_bytes = tf.strings.unicode_decode_with_offsets(text, "UTF-8")[1]  # [B, (C)]
        table = char_bytes.to_tensor(tf.int64.max)  # byte where each character starts
        start = tf.searchsorted(table, byte_starts.to_tensor(0), side="right") - 1  # [B, P]
        end = tf.searchsorted(table, byte_ends.to_tensor(0), side="left")
        length = self.max_seq_length
        position = tf.range(length)[tf.newaxis]  # [1, L]: position p holds piece p - 1
        pieces = tf.cast(ids.row_lengths(), tf.int32)[:, tf.newaxis]
        held = (position >= 1) & (position <= tf.minimum(pieces, length - 2))

        def per_position(offsets: tf.Tensor) -> tf.Tensor:
            padded = tf.pad(tf.cast(offsets, tf.int32), [[0, 0], [1, length]])  # [B, >L]
            return tf.where(held, padded[:, :length], -1)

        return features, per_position(start), per_position(end)

    def features(self, text: tf.Tensor, text_pair: tf.Tensor | None = None) -> dict:
        """Strings [B] (and [B]) -> input_ids, input_mask, segment_ids int32 [B, L]."""
        second = self._pieces(text_pair) if text_pair is not None else None
        return self._pack(self._pieces(text), second)

    # --- outputs per kind ---------------------------------------------------------------------

    def outputs(self, features: dict) -> dict:
        """Model features -> the signature outputs of this kind (see the module docstring)."""
        ids, mask, segments = (features[k] for k in ("input_ids", "input_mask", "segment_ids"))
        kind = self.kind

        def forward(ids, mask, segments):
            if kind == ENCODER:
                return self._forward_model(ids, mask, segments, training=False)
            return self._forward_model({"input_ids": ids, "input_mask": mask,
                                        "segment_ids": segments}, training=False)

        if self.jit_compile:  # the model part only: tensorflow-text's ops have no XLA kernels
            forward = tf.function(forward, jit_compile=True, autograph=False)
        return _OUTPUTS[kind](self, forward(ids, mask, segments), ids, mask, segments)

    # One method per kind: the model's outputs and its features -> the signature's outputs.

    def _encoder(self, out, ids, mask, segments) -> dict:
        seq = out["sequence_output"]
        return {"sequence_output": seq, "cls_output": seq[:, 0], "input_mask": mask}

    def _classification(self, out, ids, mask, segments) -> dict:
        logits = out["logits"]
        names = tf.tile(self.label_names[tf.newaxis], [tf.shape(logits)[0], 1])
        return {"logits": logits, "probabilities": tf.nn.softmax(logits),
                "label": tf.gather(self.label_names, tf.argmax(logits, -1)),
                "label_names": names}

    def _regression(self, out, ids, mask, segments) -> dict:
        scale = self.regression_high - self.regression_low
        return {"predictions": out["predictions"] * scale + self.regression_low}

    def _tagging(self, out, ids, mask, segments) -> dict:
        logits = out["logits"]
        tokens = self.id_to_token.lookup(tf.cast(ids, tf.int64))
        real = (mask > 0) & (ids != self.cls_id) & (ids != self.sep_id)
        starts = real & ~tf.strings.regex_full_match(tokens, "##.*")
        labels = tf.gather(self.label_names, tf.argmax(logits, -1))
        return {"logits": logits, "probabilities": tf.nn.softmax(logits), "labels": labels,
                "tokens": tokens, "word_start": tf.cast(starts, tf.int32), "input_mask": mask,
                **_entities(labels, starts, real)}

    def _squad(self, out, ids, mask, segments) -> dict:
        result = {k: out[k] for k in ("start_logits", "end_logits", "answerable_logits")
                  if k in out}
        context = (segments > 0) & (mask > 0) & (ids != self.sep_id)  # [B, L]
        start, end = _best_span(answer_beam(out["start_logits"], out["start_top_index"],
                                            out["end_beam_logits"]), context)
        result.update(tokens=self.id_to_token.lookup(tf.cast(ids, tf.int64)), input_mask=mask,
                      answer_start=start, answer_end=end)
        return result

    def signatures(self) -> dict:
        """The concrete functions to save, by signature name."""
        text = tf.TensorSpec([None], tf.string, name="text")
        pair = tf.TensorSpec([None], tf.string, name="text_pair")
        ids = [tf.TensorSpec([None, None], tf.int32, name=n)
               for n in ("input_ids", "input_mask", "segment_ids")]

        def on_text(text):
            if self.kind == TAGGING:  # entity spans as character offsets into `text`
                features, piece_start, piece_end = self._features_with_offsets(text)
                result = self.outputs(features)
                result.update(_entity_characters(result, text, piece_start, piece_end))
                return result
            return self.outputs(self.features(text))

        def on_pair(text, text_pair):
            return self.outputs(self.features(text, text_pair))

        def on_ids(input_ids, input_mask, segment_ids):
            return self.outputs({"input_ids": input_ids, "input_mask": input_mask,
                                 "segment_ids": segment_ids})

        # Not stored on the module (saving would trace them again). No autograph: the graph
        # has no data-dependent Python control flow, and converting every Keras call is slow.
        def concrete(fn, *spec):
            return tf.function(fn, input_signature=spec, autograph=False).get_concrete_function()

        serve_text, serve_pair = concrete(on_text, text), concrete(on_pair, text, pair)
        return {"serving_default": serve_pair if self.kind == SQUAD else serve_text,
                "serving_pair": serve_pair, "serving_ids": concrete(on_ids, *ids),
                "tokenize": concrete(lambda text: self.features(text), text),
                "tokenize_pair": concrete(lambda text, text_pair: self.features(text, text_pair),
                                          text, pair)}


def _entities(labels: tf.Tensor, word_start: tf.Tensor, real: tf.Tensor) -> dict:
    """The chunks of the words' tags (labels [B, L] read at word_start, as span F1 reads
    them: spans.chunk_bounds) as positions: entity_type [B, N] ("" padding), entity_first,
    entity_last [B, N] int32, the first and last piece of each entity (-1 padding)."""
    position = tf.broadcast_to(tf.range(tf.shape(labels)[1]), tf.shape(labels))  # [B, L]
    word_pos = tf.ragged.boolean_mask(position, word_start)  # [B, (W)]: a word's first piece
    first, last, kind = spans.chunk_bounds(tf.ragged.boolean_mask(labels, word_start))
    # a word's last piece: the one before the next word's first, or the last real piece
    last_real = tf.reduce_max(tf.where(real, position, 0), axis=1)  # [B]
    next_start = tf.concat([word_pos[:, 1:], tf.RaggedTensor.from_tensor(
        last_real[:, tf.newaxis] + 1)], axis=1)
    return {"entity_type": kind.to_tensor(""),
            "entity_first": tf.gather(word_pos, first, batch_dims=1).to_tensor(-1),
            "entity_last": (tf.gather(next_start, last, batch_dims=1) - 1).to_tensor(-1)}


def _entity_characters(outputs: dict, text: tf.Tensor, piece_start: tf.Tensor,
                       piece_end: tf.Tensor) -> dict:
    """entity_start, entity_end [B, N] int32: the entities' character range [start, end) in
    the raw text (-1 padding); entity_text [B, N]: that part of the text."""
    first, last = outputs["entity_first"], outputs["entity_last"]
    present = first >= 0
    start = tf.where(present, tf.gather(piece_start, tf.maximum(first, 0), batch_dims=1), -1)
    end = tf.where(present, tf.gather(piece_end, tf.maximum(last, 0), batch_dims=1), -1)
    texts = tf.broadcast_to(text[:, tf.newaxis], tf.shape(start))
    words = tf.strings.substr(texts, tf.maximum(start, 0), tf.maximum(end - start, 0),
                              unit="UTF8_CHAR")
    return {"entity_start": start, "entity_end": end,
            "entity_text": tf.where(present, words, "")}


# The serving outputs of each kind (the module docstring lists them).
_OUTPUTS = {ENCODER: ServingModule._encoder, CLASSIFICATION: ServingModule._classification,
            REGRESSION: ServingModule._regression, TAGGING: ServingModule._tagging,
            SQUAD: ServingModule._squad}


def _best_span(beam: dict, context: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(start, end) [B]: the best span of the answer beam (heads.answer_beam) as fine-tuning's
    evaluation picks it (squad.decode): the highest start + end log-probability among the
    candidates whose ends are both context pieces (bool [B, L]), start <= end < start +
    MAX_ANSWER_LENGTH (none valid: the first candidate). Whether to answer at all is the
    client's call (answerable_logits, or the [CLS] logits against the span's)."""
    starts = tf.cast(beam["start_top_index"], tf.int32)  # [B, K]
    ends = tf.cast(beam["end_top_index"], tf.int32)  # [B, K, K]: K ends per start
    scores = beam["start_top_log_probs"][:, :, tf.newaxis] + beam["end_top_log_probs"]
    offset = ends - starts[:, :, tf.newaxis]  # end - start
    allowed = ((offset >= 0) & (offset < MAX_ANSWER_LENGTH)
               & tf.gather(context, starts, batch_dims=1)[:, :, tf.newaxis]
               & tf.gather(context, ends, batch_dims=1))
    scores = tf.reshape(tf.where(allowed, scores, -1e30), [tf.shape(starts)[0], -1])
    k = tf.shape(starts)[1]
    best = tf.argmax(scores, -1, output_type=tf.int32)  # [B] in [0, K * K)
    row = tf.gather(ends, best // k, batch_dims=1)  # [B, K]: the ends of the best start
    return tf.gather(starts, best // k, batch_dims=1), tf.gather(row, best % k, batch_dims=1)


# --- writing and checking -----------------------------------------------------------------------

def export(model, vocab: Vocab, output_dir: str, max_seq_length: int, lower_case: bool = True,
           label_names: tuple[str, ...] | list[str] = (),
           regression_range: tuple[float, float] = (0.0, 1.0), max_query_length: int = 64,
           overwrite: bool = False, check_texts: list[str] | None = None,
           jit_compile: bool = False) -> dict:
    """Writes the SavedModel, reloads it and checks it against `model`; returns the max diffs.

    model: an ElectraPretrainer or Discriminator (encoder export) or a TaskModel.
    Written under a temporary name and renamed only once the check passed: a failed export
    leaves nothing at output_dir. jit_compile: compile the model part with XLA (faster on CPU;
    the serving runtime must allow XLA, e.g. TF Serving's --xla_cpu_compilation_enabled).
    """
    if isinstance(model, ElectraPretrainer):
        model = model.discriminator
    cfg = model.cfg if isinstance(model, Discriminator) else model.model_config
    kind = _kind(model)
    _check_args(model, kind, cfg, vocab, output_dir, max_seq_length, label_names,
                max_query_length, overwrite)
    if warning := casing_mismatch(vocab, lower_case):
        logging.warning(warning)
    module_dir = tempfile.mkdtemp(prefix="electra_export_")
    vocab_path = os.path.join(module_dir, "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab.tokens))
    module = ServingModule(model, vocab, vocab_path, lower_case, max_seq_length,
                           tuple(label_names), regression_range, max_query_length, jit_compile)
    tmp = f"{output_dir.rstrip('/')}.tmp-{os.getpid()}"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    try:
        signatures = module.signatures()
        tf.saved_model.save(module, tmp, signatures=signatures)
        info = {"kind": kind, "label_names": list(label_names), "lower_case": lower_case,
                "max_seq_length": max_seq_length, "max_query_length": max_query_length,
                "regression_range": list(regression_range), "vocab_size": vocab.size,
                "jit_compile": jit_compile,
                "model_config": dataclasses.asdict(cfg)}
        tf.io.gfile.makedirs(f"{tmp}/assets.extra")
        with tf.io.gfile.GFile(f"{tmp}/assets.extra/{INFO_FILE}", "w") as f:
            f.write(json.dumps(info, indent=2))
        diffs = verify(module, signatures, tmp, check_texts or SAMPLE_TEXTS)
        if tf.io.gfile.exists(output_dir):
            tf.io.gfile.rmtree(output_dir)
        tf.io.gfile.rename(tmp, output_dir)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
        shutil.rmtree(module_dir, ignore_errors=True)
    return diffs


SAMPLE_TEXTS = ["The quick brown fox jumps over the lazy dog.", "", "Café déjà vu — naïve",
                "emoji 🙂 and 漢字", " ".join(["long"] * 600)]


def _check_args(model, kind, cfg, vocab, output_dir, max_seq_length, label_names,
                max_query_length, overwrite) -> None:
    if vocab.size != cfg.vocab_size:
        raise VocabError(f"{vocab.path} has {vocab.size} tokens but the model's vocab_size is "
                         f"{cfg.vocab_size}: not the vocabulary this model was trained with")
    if tf.io.gfile.exists(output_dir) and not overwrite:
        raise ExportError(f"{output_dir} exists; pass --overwrite to replace it")
    if not 3 <= max_seq_length <= cfg.max_position_embeddings:
        raise ExportError(f"max_seq_length={max_seq_length}: expected 3 to the model's "
                          f"max_position_embeddings={cfg.max_position_embeddings}")
    if kind in (CLASSIFICATION, TAGGING) and len(label_names) != model.num_labels:
        raise ExportError(f"{len(label_names)} label names for a {kind} head with "
                          f"{model.num_labels} labels: pass one name per label, in order")
    if kind == SQUAD and not 0 < max_query_length < max_seq_length - 2:
        raise ExportError(f"max_query_length={max_query_length}: expected 1 to "
                          f"{max_seq_length - 3}")


def _names(function) -> list[str]:
    return [spec.name for spec in function.structured_input_signature[0]]


def verify(module: ServingModule, signatures: dict, path: str, texts: list[str]
           ) -> dict[str, float]:
    """Reloads the SavedModel at `path` and compares each signature with its in-memory
    counterpart (`module.signatures()`) on `texts` (pairs: with the texts reversed), and
    serving_default with the model run eagerly ("eager").
    Raises ExportError beyond TOLERANCE (eager: EAGER_TOLERANCE) x max(1, |value|) (ids and
    strings: any difference); returns the max abs difference per signature."""
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops before loading)

    loaded = tf.saved_model.load(path)
    text, pair = tf.constant(texts), tf.constant(texts[::-1])
    ids = signatures["tokenize_pair"](text=text, text_pair=pair)
    available = {"text": text, "text_pair": pair, **ids}
    diffs = {}
    for name, function in signatures.items():
        inputs = {k: available[k] for k in _names(function)}
        diffs[name] = _compare(name, function(**inputs), loaded.signatures[name](**inputs))
    squad = module.kind == SQUAD
    eager = module.outputs(module.features(text, pair if squad else None))  # no tf.function
    inputs = {k: available[k] for k in _names(signatures["serving_default"])}
    diffs["eager"] = _compare("serving_default vs the eager model", eager,
                              loaded.signatures["serving_default"](**inputs), EAGER_TOLERANCE)
    return diffs


def _compare(name: str, expected: dict, got: dict, tolerance: float = TOLERANCE) -> float:
    """Max abs difference of two output dicts; raises ExportError where a value differs by more
    than `tolerance` x max(1, |expected value|) (ids and strings: any difference)."""
    worst = 0.0
    for key, value in expected.items():
        a, b = value.numpy(), got[key].numpy()
        if a.dtype.kind in "OSUiub":  # strings, ids, masks: exactly
            if not np.array_equal(a, b):
                raise ExportError(f"reloaded '{name}' output '{key}' differs")
            continue
        if not a.size:
            continue
        diff = np.abs(a.astype(np.float64) - b)
        bad = ~(diff <= tolerance * np.maximum(1.0, np.abs(a)))  # NaN too
        if bad.any():
            at = np.unravel_index(np.argmax(bad), a.shape)
            raise ExportError(f"reloaded '{name}' output '{key}' differs by {diff[at]:.3g} "
                              f"at {a[at]:.6g} (> {tolerance} x max(1, |value|))")
        worst = max(worst, float(diff.max()))
    return worst


def read_info(path: str) -> dict:
    """The export's description (kind, label names, lengths, config) from assets.extra."""
    with tf.io.gfile.GFile(f"{path}/assets.extra/{INFO_FILE}") as f:
        return json.load(f)


def load_finetuned(finetune_dir: str, seed: int = 0):
    """A run_finetuning.py output: (TaskModel with seed_<seed>'s latest weights, its settings:
    vocab_file, lower_case, max_seq_length, max_query_length, the task's label_names (empty
    when they were learned from the training file) and regression_range)."""
    from electra_tf.config import ModelConfig
    from electra_tf.heads import TaskModel

    path = f"{finetune_dir}/finetune_config.json"
    if not tf.io.gfile.exists(path):
        raise ExportError(f"{path} not found: not a run_finetuning.py output directory")
    with tf.io.gfile.GFile(path) as f:
        settings = json.load(f)
    prefix = tf.train.latest_checkpoint(f"{finetune_dir}/seed_{seed}")
    if prefix is None:
        raise ExportError(f"{finetune_dir}/seed_{seed}: no checkpoint (another --seed?)")
    task = settings["task"]
    model = TaskModel(ModelConfig(**settings["model"]), task["kind"],
                      num_labels=_saved_num_labels(prefix) or 2,
                      answerable=bool(task.get("squad_v2")),
                      beam_size=settings.get("beam_size", 20), name="task_model")
    model.build()
    status = tf.train.Checkpoint(model=model).read(prefix)
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ExportError(f"{prefix} does not match {path}: {str(e).splitlines()[0][:300]}"
                          ) from None
    status.expect_partial()  # the optimizer's slots are not exported
    return model, {"vocab_file": settings["vocab_file"], "lower_case": settings["lower_case"],
                   "max_seq_length": settings["max_seq_length"],
                   "max_query_length": settings.get("max_query_length", 64),
                   "label_names": tuple(task.get("labels") or ()),
                   "regression_range": tuple(task.get("label_range") or (0.0, 1.0))}


def _saved_num_labels(prefix: str) -> int:
    """The output width of a saved classification/tagging head (the labels are not saved)."""
    for name, shape in tf.train.list_variables(prefix):
        if name.startswith("model/output_layer/") and "kernel" in name:
            return shape[-1]
    return 0
