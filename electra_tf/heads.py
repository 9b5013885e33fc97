"""Fine-tuning heads on the discriminator, as the authors' finetune/ code, and one TaskModel.

Legend: B batch, L sequence length, H hidden size, C classes, K SQuAD beam (start candidates).

Heads (official `get_prediction_module`s):
  classification: [CLS] vector -> dropout 0.1 (training) -> dense(C); no pooler.
  regression:     [CLS] vector -> dropout 0.1 (training) -> dense(1) (STS-B; MSE).
                  With model_config.pooling "mean" both read the mean of the sequence over
                  input_mask instead of [CLS] (a sentence-transformers checkpoint's pooling).
  tagging:        every position -> dropout 0.1 (training) -> dense(C); the loss reads only the
                  first sub-token of each word (labels elsewhere have weight 0).
  squad:          start = dense(1) over the sequence; end = dense(1)(dense(512, GELU)(
                  [start vector; token vector])), "joint prediction": when training, conditioned
                  on the gold start; at inference on each of the top-K starts (beam). SQuAD 2.0
                  adds an answerable classifier over [CLS; softmax(start) . sequence]. Answers
                  can only be [CLS] (no answer) or context tokens (segment 1): other positions
                  get -1000 added to their logits, as the official code.
Head dense layers use Keras' default Glorot-uniform init, as `tf.layers.dense` did there.
The discriminator's replaced-token-detection head is kept (so converted and exported weights
keep their canonical names) but frozen and never run.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from electra_tf import rng
from electra_tf.config import ModelConfig
from electra_tf.kinds import CLASSIFICATION, KINDS, REGRESSION, SQUAD, TAGGING
from electra_tf.layers import dropout, gelu
from electra_tf.models import Discriminator

QA_HIDDEN = 512  # the official qa_hidden / answerable-classifier width
_NOT_AN_ANSWER = -1000.0  # the official additive mask for impossible answer positions


def answer_mask(input_mask: tf.Tensor, segment_ids: tf.Tensor) -> tf.Tensor:
    """[B, L] float32: 1 where an answer may start or end (context tokens and [CLS]), else 0."""
    mask = tf.cast(input_mask, tf.float32) * tf.cast(segment_ids, tf.float32)
    return tf.minimum(1.0, mask + tf.one_hot(0, tf.shape(mask)[1], dtype=tf.float32))


def pooled(sequence: tf.Tensor, input_mask: tf.Tensor, pooling: str) -> tf.Tensor:
    """sequence [B, L, H], input_mask [B, L] -> [B, H]: the [CLS] vector ("cls") or the mean
    over the positions input_mask keeps ("mean", summed in float32)."""
    if pooling == "cls":
        return sequence[:, 0]
    mask = tf.cast(input_mask, tf.float32)[:, :, None]  # [B, L, 1]
    total = tf.reduce_sum(tf.cast(sequence, tf.float32) * mask, 1)  # [B, H]
    mean = total / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
    return tf.cast(mean, sequence.dtype)


@keras.saving.register_keras_serializable("electra_tf")
class TaskModel(keras.Model):
    """The ELECTRA discriminator with one task head; `call(features)` returns a dict.

    Args:
      model_config: the discriminator's shape (a ModelConfig or its dict).
      head: the task kind, one of kinds.KINDS (the attribute `kind`).
      num_labels: C for classification and tagging (ignored by regression and squad).
      answerable: squad only: add the SQuAD 2.0 answerable classifier.
      beam_size: squad only: K start candidates at inference (official: 20).
      head_dropout: dropout before the classification/regression/tagging dense (official 0.1).

    `call({"input_ids", "input_mask", "segment_ids"} [B, L] int, training, seed)` returns
      classification: {"logits": [B, C]};  regression: {"predictions": [B]};
      tagging: {"logits": [B, L, C]};
      squad: {"start_logits": [B, L], "end_logits": [B, L]} (+ "answerable_logits" [B]).
        Training with "start_positions" [B] in the features: end logits are conditioned on the
        gold start. Otherwise: on the best start, plus "start_top_index" [B, K] and
        "end_beam_logits" [B, K, L] (end logits conditioned on each of the top-K starts).
    All outputs are float32. `seed` is a [2] stateless seed for dropout when training.
    """

    def __init__(self, model_config: ModelConfig | dict, head: str, num_labels: int = 2,
                 answerable: bool = False, beam_size: int = 20, head_dropout: float = 0.1,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(model_config, dict):  # from get_config
            model_config = ModelConfig(**model_config)
        if head not in KINDS:
            raise ValueError(f"unknown head {head!r}; expected one of {KINDS}")
        if head in (CLASSIFICATION, TAGGING) and num_labels < 2:
            raise ValueError(f"head {head!r} needs num_labels >= 2, got {num_labels}")
        if answerable and head != SQUAD:
            raise ValueError("answerable=True is for the squad head only")
        self.model_config = model_config
        self.kind = head  # the task kind (a string); the head layers are below
        self.num_labels = num_labels
        self.answerable = answerable
        self.beam_size = beam_size
        self.head_dropout = head_dropout
        self.discriminator = Discriminator(model_config, name="discriminator")
        self.discriminator.head.trainable = False  # pretraining's RTD head: kept, unused
        if head == CLASSIFICATION:
            self.output_layer = keras.layers.Dense(num_labels, name="classifier")
        elif head == REGRESSION:
            self.output_layer = keras.layers.Dense(1, name="regressor")
        elif head == TAGGING:
            self.output_layer = keras.layers.Dense(num_labels, name="tagger")
        else:
            self.start_layer = keras.layers.Dense(1, name="start_logits")
            self.qa_hidden = keras.layers.Dense(QA_HIDDEN, activation=gelu, name="qa_hidden")
            self.end_layer = keras.layers.Dense(1, name="qa_logits")
            if answerable:
                self.answerable_hidden = keras.layers.Dense(QA_HIDDEN, activation=gelu,
                                                            name="answerable_hidden")
                self.answerable_layer = keras.layers.Dense(1, name="answerable_logits")

    def build(self, input_shape=None):
        h = self.model_config.hidden_size
        self.discriminator.build()
        if self.kind == SQUAD:
            self.start_layer.build((None, h))
            self.qa_hidden.build((None, 2 * h))
            self.end_layer.build((None, QA_HIDDEN))
            if self.answerable:
                self.answerable_hidden.build((None, 2 * h))
                self.answerable_layer.build((None, QA_HIDDEN))
        else:
            self.output_layer.build((None, h))
        self.built = True

    @property
    def encoder(self):
        return self.discriminator.encoder

    def head_variables(self) -> list:
        """The task head's variables (the ones layer-wise decay gives the full learning rate)."""
        if self.kind != SQUAD:
            return list(self.output_layer.weights)
        layers = [self.start_layer, self.qa_hidden, self.end_layer]
        if self.answerable:
            layers += [self.answerable_hidden, self.answerable_layer]
        return [v for layer in layers for v in layer.weights]

    def call(self, features, training=None, seed=None):
        if training and seed is None:
            seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
        encoder_seed = head_seed = None
        if training:
            encoder_seed, head_seed = rng.split(rng.stream(seed, "task_dropout"), 2)
        sequence = self.discriminator.encoder(
            features["input_ids"], features["input_mask"], features["segment_ids"],
            training=training, seed=encoder_seed)  # [B, L, H]
        if self.kind == SQUAD:
            return self._squad(sequence, features, training)
        if self.kind == TAGGING:
            x = dropout(sequence, self.head_dropout, head_seed)
            return {"logits": tf.cast(self.output_layer(x), tf.float32)}  # [B, L, C]
        x = dropout(pooled(sequence, features["input_mask"], self.model_config.pooling),
                    self.head_dropout, head_seed)  # [B, H]
        out = tf.cast(self.output_layer(x), tf.float32)
        if self.kind == REGRESSION:
            return {"predictions": tf.squeeze(out, -1)}  # [B]
        return {"logits": out}  # [B, C]

    def _end_logits(self, start_vectors, sequence):
        """start_vectors [..., L, H] (tiled), sequence [..., L, H] -> end logits [..., L]."""
        joint = tf.concat([start_vectors, sequence], -1)
        return tf.cast(tf.squeeze(self.end_layer(self.qa_hidden(joint)), -1), tf.float32)

    def _squad(self, sequence, features, training):
        length = tf.shape(sequence)[1]
        mask_add = (answer_mask(features["input_mask"], features["segment_ids"]) - 1.0) * (
            -_NOT_AN_ANSWER)  # [B, L]: 0 where allowed, -1000 elsewhere
        start_logits = tf.cast(tf.squeeze(self.start_layer(sequence), -1), tf.float32) + mask_add
        out = {"start_logits": start_logits}
        if training and "start_positions" in features:
            start = tf.gather(sequence, features["start_positions"], batch_dims=1)  # [B, H]
            tiled = tf.tile(start[:, tf.newaxis], [1, length, 1])  # [B, L, H]
            out["end_logits"] = self._end_logits(tiled, sequence) + mask_add
        else:
            k = tf.minimum(self.beam_size, length)
            _, top = tf.math.top_k(start_logits, k=k)  # [B, K]
            starts = tf.gather(sequence, top, batch_dims=1)  # [B, K, H]
            tiled = tf.tile(starts[:, :, tf.newaxis], [1, 1, length, 1])  # [B, K, L, H]
            seq_k = tf.tile(sequence[:, tf.newaxis], [1, k, 1, 1])  # [B, K, L, H]
            beam = self._end_logits(tiled, seq_k) + mask_add[:, tf.newaxis]  # [B, K, L]
            out.update(start_top_index=top, end_beam_logits=beam, end_logits=beam[:, 0])
        if self.answerable:
            probs = tf.nn.softmax(start_logits)  # [B, L]
            attended = tf.einsum("bl,blh->bh", tf.cast(probs, sequence.dtype), sequence)
            x = tf.concat([sequence[:, 0], attended], -1)  # [B, 2H]
            logit = self.answerable_layer(self.answerable_hidden(x))
            out["answerable_logits"] = tf.cast(tf.squeeze(logit, -1), tf.float32)
        return out

    def get_config(self):
        config = super().get_config()
        config.update(model_config=dataclasses.asdict(self.model_config), head=self.kind,
                      num_labels=self.num_labels, answerable=self.answerable,
                      beam_size=self.beam_size, head_dropout=self.head_dropout)
        return config


def answer_beam(start_logits: tf.Tensor, start_top_index: tf.Tensor,
                end_beam_logits: tf.Tensor) -> dict[str, tf.Tensor]:
    """The candidate spans of the joint prediction, scored as the authors' decoding does.

    start_logits [B, L], start_top_index [B, K], end_beam_logits [B, K, L] (a TaskModel's
    squad outputs at inference) -> start_top_index [B, K], start_top_log_probs [B, K],
    end_top_index, end_top_log_probs [B, K, K]: for each of the top-K starts, its top-K ends;
    a span's score is its start's plus its end's log-probability (log-softmax over the
    sequence). Fine-tuning's evaluation (squad.decode) and the exported model's answer_start /
    answer_end both pick from this beam.
    """
    k = tf.shape(start_top_index)[1]
    start_log_probs = tf.nn.log_softmax(start_logits)  # [B, L]
    end_top_log_probs, end_top_index = tf.math.top_k(tf.nn.log_softmax(end_beam_logits),
                                                     k=k)  # [B, K, K]
    return {"start_top_index": start_top_index,
            "start_top_log_probs": tf.gather(start_log_probs, start_top_index, batch_dims=1),
            "end_top_index": end_top_index, "end_top_log_probs": end_top_log_probs}


def build_task_model(model_config: ModelConfig, head: str, num_labels: int = 2,
                     answerable: bool = False, beam_size: int = 20,
                     name: str = "task_model") -> TaskModel:
    """Creates and builds a TaskModel (all variables exist afterwards)."""
    model = TaskModel(model_config, head, num_labels, answerable=answerable,
                      beam_size=beam_size, name=name)
    model.build()
    return model
