"""Fine-tuning inputs: every split read, checked and featurized once; tf.data for train/eval.

`prepare` reads the task's splits (tasks.py), checks labels (a dev label unseen in train is an
error), featurizes them (features.py, squad.py) and logs truncation counts. `train_dataset`
yields the global batches of steps start..end from a per-epoch permutation seeded by
(seed, epoch), so a resumed run sees exactly the batches it would have seen, with no iterator
state to checkpoint; `eval_dataset` pads to whole batches and marks the padding rows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf.data import features as feats
from electra_tf.data import squad, tasks
from electra_tf.errors import DataError
from electra_tf.kinds import GENERIC_KINDS, REGRESSION, SQUAD, TAGGING
from electra_tf.tokenization import WordPieceTokenizer

if TYPE_CHECKING:
    from electra_tf.finetune_config import FinetuneConfig


@dataclasses.dataclass
class EvalSet:
    """One evaluation file: its examples, features and (SQuAD) windows or (tagging) starts."""

    name: str
    examples: list
    encoded: object  # feats.Encoded or squad.SquadFeatures
    path: str = ""


@dataclasses.dataclass
class TaskData:
    train: feats.Encoded | squad.SquadFeatures
    dev: list[EvalSet]
    test: list[EvalSet]
    labels: tuple[str, ...] = ()
    label_range: tuple[float, float] = (0.0, 1.0)


def prepare(cfg: FinetuneConfig, tokenizer: WordPieceTokenizer) -> TaskData:
    """Reads and checks every split, then featurizes it (once for all seeds)."""
    spec = cfg.task
    train = tasks.read_split(spec, cfg.data_dir, "train")["train"]
    splits = {s: tasks.read_split(spec, cfg.data_dir, s) for s in ("dev", "test")}
    labels: tuple[str, ...] = ()
    label_range = (0.0, 1.0)
    if spec.kind in GENERIC_KINDS:
        labels = tasks.label_list(spec, train) if spec.kind != REGRESSION else ()
        where = f"{cfg.data_dir}/{spec.split_files('train')[0][1]}"
        tasks.check_labels(spec, labels, train, where)
        for split in filter(spec.labelled, ("dev", "test")):
            for name, examples in splits[split].items():
                where = name if name == split else f"{split}/{name}"
                tasks.check_labels(spec, labels, examples, f"{cfg.data_dir} ({where} split)")
        if spec.kind == REGRESSION:
            label_range = tasks.regression_range(spec, train)

    def encode(examples, with_labels, training=False):
        if spec.kind == SQUAD:
            return squad.featurize(examples, tokenizer, cfg.max_seq_length, cfg.doc_stride,
                                   cfg.max_query_length, training)
        if spec.kind == TAGGING:
            return feats.encode_tagging(examples, tokenizer, cfg.max_seq_length, labels,
                                        with_labels)
        return feats.encode_sentences(examples, tokenizer, cfg.max_seq_length, spec.kind,
                                      labels, label_range, with_labels)

    def report(name, examples, encoded):
        cut = getattr(encoded, "truncated", 0)
        if cut:
            unit, limit = {"squad": ("questions", "max_query_length")}.get(
                               spec.kind, ("examples", "max_seq_length"))
            logging.warning("%s/%s: %d %s truncated to %s=%d", spec.name, name, cut, unit,
                            limit, getattr(cfg, limit))
        logging.info("%s/%s: %d examples -> %d features", spec.name, name, len(examples),
                     len(encoded))

    encoded_train = encode(train, True, training=True)
    if len(encoded_train) == 0:
        raise DataError(f"{cfg.data_dir}: no usable training example for {spec.name!r}")
    report("train", train, encoded_train)
    eval_sets = {}
    for split in ("dev", "test"):
        eval_sets[split] = []
        for (name, examples), (_, filename) in zip(splits[split].items(),
                                                   spec.split_files(split)):
            encoded = encode(examples, spec.labelled(split))
            report(f"{split}/{name}", examples, encoded)
            eval_sets[split].append(EvalSet(name, examples, encoded,
                                            f"{cfg.data_dir}/{filename}"))
    return TaskData(encoded_train, eval_sets["dev"], eval_sets["test"], labels, label_range)


def train_dataset(features: dict[str, np.ndarray], batch_size: int, steps: int, seed: int,
                  start_step: int = 0) -> tf.data.Dataset:
    """Global batches for steps start_step..steps-1: a fresh permutation each epoch from
    (seed, epoch), so a resumed run sees exactly the batches it would have seen."""
    n = len(next(iter(features.values())))
    epochs = math.ceil(steps * batch_size / n)
    order = np.concatenate([np.random.default_rng([seed, e]).permutation(n)
                            for e in range(epochs)])
    order = order[start_step * batch_size:steps * batch_size]
    table = {k: tf.constant(v) for k, v in features.items()}
    return (tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)
            .map(lambda idx: {k: tf.gather(v, idx) for k, v in table.items()})
            .prefetch(tf.data.AUTOTUNE))


def eval_dataset(features: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """All rows in order, padded to whole batches; `row` says which rows are real (>= 0)."""
    n = len(next(iter(features.values())))
    total = math.ceil(n / batch_size) * batch_size
    padded = {k: np.concatenate([v, np.zeros((total - n, *v.shape[1:]), v.dtype)])
              for k, v in features.items()}
    padded["row"] = np.concatenate([np.arange(n), -np.ones(total - n, np.int64)])
    return tf.data.Dataset.from_tensor_slices(padded).batch(batch_size, drop_remainder=True)
