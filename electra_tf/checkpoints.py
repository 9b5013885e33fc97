"""Our checkpoints: where they are, what they hold, and loading them into a model.

Layout (tf.train.Checkpoint): a pretraining run's --model_dir holds ckpt-<step> with
`model` = ElectraPretrainer (plus optimizer, loss scale and data iterator); the converters
write `model.ckpt` (weights only) with a config.json beside it; a fine-tuning seed directory
holds `model` = TaskModel; an exported SavedModel holds its variables under variables/.
Every load checks that each weight of the model was found: a mismatched config fails here with
the path, not later with a silent random init.
"""

from __future__ import annotations

import json

import tensorflow as tf
from absl import logging

from electra_tf.atomic import write_atomic
from electra_tf.config import ElectraConfig
from electra_tf.errors import ConfigError, ConversionError
from electra_tf.models import ElectraPretrainer, build_pretrainer

INIT_CHECKPOINT = "model.ckpt"  # our format: tf.train.Checkpoint(model=ElectraPretrainer)
CONFIG_FILE = "config.json"


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix from a prefix, a run directory, or a directory with one checkpoint
    (or a SavedModel directory: its variables/variables)."""
    if tf.io.gfile.exists(f"{path}/saved_model.pb"):
        return f"{path}/variables/variables"
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        indexes = tf.io.gfile.glob(f"{path}/*.index")
        if len(indexes) == 1:
            return indexes[0][:-len(".index")]
        raise ConfigError(f"--init_checkpoint={path}: no checkpoint in this directory"
                          + (f" (several: {indexes}; pass one prefix)" if indexes else ""))
    if tf.io.gfile.exists(f"{path}.index"):
        return path
    raise ConfigError(f"--init_checkpoint={path}: neither a checkpoint prefix (no "
                      f"{path}.index) nor a directory")


def initialize(model, path: str) -> str:
    """Restores `model.discriminator` from `path` (see the module docstring); returns the
    prefix used. Raises ConfigError when no layout of the checkpoint holds all its weights."""
    prefix = resolve_checkpoint(path)
    layouts = {  # how each source nests the discriminator
        "model.discriminator": lambda d: tf.train.Checkpoint(
            model=tf.train.Checkpoint(discriminator=d)),
        "discriminator": lambda d: tf.train.Checkpoint(discriminator=d),
    }
    keys = {name for name, _ in tf.train.list_variables(prefix)}
    for layout, make in layouts.items():
        root = layout.split(".")[0]
        if not any(k.startswith(f"{root}/") for k in keys):
            continue
        try:
            status = make(model.discriminator).read(prefix)
            status.expect_partial()  # the generator, heads, optimizer slots: not wanted here
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError) as e:
            raise ConfigError(f"--init_checkpoint={path}: its discriminator does not match "
                              f"the model config ({str(e).splitlines()[0][:300]})") from None
        logging.info("initialized the discriminator from %s (%s)", prefix, layout)
        return prefix
    raise ConfigError(f"--init_checkpoint={path}: no discriminator in {prefix} (expected a "
                      "pretraining, converted, fine-tuning or exported checkpoint)")


def warm_start(model: ElectraPretrainer, path: str) -> None:
    """Pretraining's --init_checkpoint: weights only (no optimizer, no step). Every weight of
    `model` must be found (a mismatched config fails here); read() leaves out the save counter,
    which converted checkpoints do not carry."""
    try:
        tf.train.Checkpoint(model=model).read(path).expect_partial() \
            .assert_existing_objects_matched()
    except AssertionError as e:
        raise ConfigError(
            f"--init_checkpoint {path}: does not hold every weight of this model config (a "
            "different size or vocabulary? pass the config.json written beside it as "
            f"--config_json): {str(e).splitlines()[0][:200]}") from None
    logging.info("warm start (weights only) from %s", path)


def save_init_checkpoint(model: ElectraPretrainer, output_dir: str,
                         overwrite: bool = False) -> str:
    """Writes our checkpoint (weights only) + config.json: the format `run_pretraining.py
    --init_checkpoint` and fine-tuning warm starts read. Returns the checkpoint prefix."""
    prefix = f"{output_dir}/{INIT_CHECKPOINT}"
    if tf.io.gfile.exists(prefix + ".index") and not overwrite:
        raise ConversionError(f"{prefix} exists; pass --overwrite to replace it")
    tf.io.gfile.makedirs(output_dir)
    tf.train.Checkpoint(model=model).write(prefix)
    write_atomic(f"{output_dir}/{CONFIG_FILE}", model.config.to_json().encode("utf-8"))
    return prefix


def load_pretrainer(path: str, config_json: str | None = None,
                    vocab_size: int | None = None) -> ElectraPretrainer:
    """Our pretrainer from our checkpoint: a pretraining run's --model_dir (latest ckpt-N), a
    converted directory (model.ckpt), or a prefix; the config is config.json next to it
    unless given, its model's vocab_size `vocab_size` (the vocabulary's) where the file does
    not set one. Every model variable must be in the checkpoint."""
    if tf.io.gfile.isdir(path):
        directory = path
        prefix = tf.train.latest_checkpoint(path) or f"{path}/{INIT_CHECKPOINT}"
    else:
        directory, prefix = path.rsplit("/", 1)[0] if "/" in path else ".", path
    if not tf.io.gfile.exists(prefix + ".index"):
        raise ConversionError(f"{path}: no checkpoint ({prefix}.index not found)")
    config_json = config_json or f"{directory}/{CONFIG_FILE}"
    if not tf.io.gfile.exists(config_json):
        raise ConversionError(f"{config_json} not found: pass the run's config.json")
    with tf.io.gfile.GFile(config_json) as f:
        data = json.load(f)
    if vocab_size and isinstance(data, dict) and isinstance(data.get("model", {}), dict):
        data.setdefault("model", {}).setdefault("vocab_size", vocab_size)
    cfg = ElectraConfig.from_dict(data)
    model = build_pretrainer(cfg)
    try:  # a missing variable fails the assertion, a differently shaped one the read
        status = tf.train.Checkpoint(model=model).read(prefix)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise ConversionError(f"{prefix} does not hold this model ({config_json}): "
                                      f"{str(e).splitlines()[0][:300]}") from None
    status.expect_partial()  # a pretraining checkpoint also holds the optimizer and data
    return model
