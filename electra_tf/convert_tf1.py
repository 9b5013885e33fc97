"""The official TF1 checkpoints (google-research/electra): read, infer the config, load, write.

A released checkpoint (`electra_small`, `electra_base`, `electra_large`) or one from the
official `run_pretraining.py` holds the discriminator under `electra/`, the generator under
`generator/`, the shared embeddings under `electra/embeddings/` and the heads under
`discriminator_predictions/` and `generator_predictions/` (names in convert.py's table).
Pretraining checkpoints also hold Adam slots (`<name>/adam_m`, `<name>/adam_v`) and
`global_step`: a warm start takes weights only, so these are skipped. Anything else that the
name map does not cover is reported, never silently dropped.

What a checkpoint cannot tell: the number of attention heads (not part of any shape). The
official models all use 64 per head, so `num_heads` defaults to hidden / 64.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf import convert
from electra_tf.config import SIZES, ElectraConfig, ModelConfig, PretrainConfig
from electra_tf.models import ElectraPretrainer, build_pretrainer
from electra_tf.tokenization import write_atomic

OPTIMIZER_SLOTS = ("/adam_m", "/adam_v")  # the official AdamWeightDecayOptimizer's slots
BOOKKEEPING = ("global_step",)
INIT_CHECKPOINT = "model.ckpt"  # our format: tf.train.Checkpoint(model=ElectraPretrainer)
CONFIG_FILE = "config.json"


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What a conversion read: counts and the names it did not use."""

    source: str
    loaded: int
    skipped: int  # optimizer slots and global_step
    unmatched: tuple[str, ...]  # variables the name map does not cover
    generator_loaded: bool

    def summary(self) -> str:
        text = (f"{self.source}: {self.loaded} tensors loaded, {self.skipped} optimizer/step "
                f"entries skipped, generator {'loaded' if self.generator_loaded else 'absent'}")
        if self.unmatched:
            text += f"; {len(self.unmatched)} unmatched: {', '.join(self.unmatched[:10])}"
            text += " ..." if len(self.unmatched) > 10 else ""
        return text


def read_tf1_checkpoint(path: str) -> tuple[dict[str, np.ndarray], int]:
    """A TF1 checkpoint (prefix, or a directory with a `checkpoint` file) -> ({name: array},
    number of optimizer-slot and global_step entries left out)."""
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise convert.ConversionError(f"{path}: no checkpoint found in this directory")
        path = latest
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as e:
        raise convert.ConversionError(f"{path}: not a readable TF checkpoint ({e})") from None
    names = sorted(reader.get_variable_to_shape_map())
    kept = [n for n in names if not (n.endswith(OPTIMIZER_SLOTS) or n in BOOKKEEPING)]
    return {n: reader.get_tensor(n) for n in kept}, len(names) - len(kept)


def _shape(state: dict, name: str, path: str) -> tuple[int, ...]:
    if name not in state:
        raise convert.ConversionError(f"{path}: missing '{name}' (needed to infer the model "
                                      "shape; is this an official ELECTRA checkpoint?)")
    return tuple(state[name].shape)


def _layers(state: dict, scope: str) -> int:
    n = 0
    while f"{scope}/encoder/layer_{n}/attention/self/query/kernel" in state:
        n += 1
    return n


def config_from_tf1(state: dict[str, np.ndarray], path: str = "checkpoint",
                    num_heads: int | None = None) -> ModelConfig:
    """Infers our ModelConfig from the checkpoint's shapes (released Small: generator 1.0).

    Raises ConversionError when the generator is not one our config can express (its depth,
    FFN or head count must follow the official `get_generator_config`).
    """
    vocab_size, embedding_size = _shape(state, "electra/embeddings/word_embeddings", path)
    max_positions, _ = _shape(state, "electra/embeddings/position_embeddings", path)
    type_vocab, _ = _shape(state, "electra/embeddings/token_type_embeddings", path)
    hidden = _shape(state, "electra/encoder/layer_0/attention/self/query/kernel", path)[1]
    intermediate = _shape(state, "electra/encoder/layer_0/intermediate/dense/kernel", path)[1]
    layers = _layers(state, "electra")
    fraction = 0.25
    if _layers(state, "generator"):
        gen_hidden = _shape(state, "generator/encoder/layer_0/attention/self/query/kernel",
                            path)[1]
        gen_ffn = _shape(state, "generator/encoder/layer_0/intermediate/dense/kernel", path)[1]
        if _layers(state, "generator") != layers or gen_ffn != 4 * gen_hidden:
            raise convert.ConversionError(
                f"{path}: generator has {_layers(state, 'generator')} layers and FFN {gen_ffn};"
                f" expected {layers} layers (the discriminator's) and FFN 4 x {gen_hidden}")
        fraction = gen_hidden / hidden
    cfg = ModelConfig(vocab_size=vocab_size, embedding_size=embedding_size, hidden_size=hidden,
                      num_layers=layers, num_heads=num_heads or max(1, hidden // 64),
                      intermediate_size=intermediate, generator_fraction=fraction,
                      max_position_embeddings=max_positions, type_vocab_size=type_vocab)
    if _layers(state, "generator") and cfg.generator_hidden_size != gen_hidden:
        raise convert.ConversionError(f"{path}: generator hidden size {gen_hidden} is not "
                                      f"expressible as a fraction of {hidden}")
    return cfg


def full_config(model_cfg: ModelConfig) -> ElectraConfig:
    """Our run config for an imported model: the published recipe of the same shape if there
    is one (e.g. Small's), else Small's recipe; max_seq_length within the position table."""
    for preset in ("small", "base", "large"):
        ref = SIZES[preset].model
        if (ref.hidden_size, ref.num_layers) == (model_cfg.hidden_size, model_cfg.num_layers):
            pretrain = SIZES[preset].pretrain
            break
    else:
        pretrain = SIZES["small"].pretrain
    length = min(pretrain.max_seq_length, model_cfg.max_position_embeddings)
    pretrain = PretrainConfig(**{**dataclasses.asdict(pretrain), "max_seq_length": length})
    return ElectraConfig(model=model_cfg, pretrain=pretrain)


def load_tf1_weights(model: ElectraPretrainer, path: str,
                     require_generator: bool = False) -> ImportReport:
    """Copies an official TF1 checkpoint into our pretrainer through the name map.

    Missing or mis-shaped variables raise ConversionError (naming them). A checkpoint without
    a generator (e.g. a fine-tuned discriminator) loads the discriminator only, unless
    `require_generator`. Variables left unmatched are returned in the report and logged.
    """
    state, skipped = read_tf1_checkpoint(path)
    tf1 = lambda name: (convert.tf1_name(name), False)  # noqa: E731
    used = convert.assign_by_name(convert.discriminator_variables(model.discriminator), state,
                                  f"{path} (discriminator)", tf1)
    has_generator = any(n.startswith(("generator/", "generator_predictions/")) for n in state)
    if has_generator or require_generator:
        used |= convert.assign_by_name(
            convert.generator_variables(model.generator, with_embeddings=False), state,
            f"{path} (generator)", tf1)
    unmatched = tuple(sorted(set(state) - used))
    report = ImportReport(path, len(used), skipped, unmatched, has_generator)
    if unmatched:
        logging.warning("%s", report.summary())
    return report


def import_tf1_checkpoint(path: str, num_heads: int | None = None
                          ) -> tuple[ElectraPretrainer, ImportReport]:
    """Builds the matching pretrainer for an official checkpoint and loads it."""
    state, _ = read_tf1_checkpoint(path)
    model = build_pretrainer(full_config(config_from_tf1(state, path, num_heads)))
    return model, load_tf1_weights(model, path)


def write_tf1_checkpoint(model: ElectraPretrainer, prefix: str) -> str:
    """Writes our pretrainer under the official TF1 names (a tf.compat.v1 Saver checkpoint),
    for the official code or tools that read its checkpoints. Returns the saved path."""
    state = convert.to_tf1_state(convert.pretrainer_variables(model))
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.get_variable(name, value.shape, tf.float32)
                     for name, value in state.items()}
        step = tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver(var_list={**variables, "global_step": step})
        with tf.compat.v1.Session() as sess:
            for name, variable in variables.items():
                variable.load(state[name], sess)
            step.load(0, sess)
            return saver.save(sess, prefix, write_meta_graph=False)


def save_init_checkpoint(model: ElectraPretrainer, output_dir: str,
                         overwrite: bool = False) -> str:
    """Writes our checkpoint (weights only) + config.json: the format `run_pretraining.py
    --init_checkpoint` and fine-tuning warm starts read. Returns the checkpoint prefix."""
    prefix = f"{output_dir}/{INIT_CHECKPOINT}"
    if tf.io.gfile.exists(prefix + ".index") and not overwrite:
        raise convert.ConversionError(f"{prefix} exists; pass --overwrite to replace it")
    tf.io.gfile.makedirs(output_dir)
    tf.train.Checkpoint(model=model).write(prefix)
    write_atomic(f"{output_dir}/{CONFIG_FILE}", model.config.to_json().encode("utf-8"))
    return prefix


def load_pretrainer(path: str, config_json: str | None = None) -> ElectraPretrainer:
    """Our pretrainer from our checkpoint: a pretraining run's --model_dir (latest ckpt-N), a
    converted directory (model.ckpt), or a prefix; the config is config.json next to it
    unless given. Every model variable must be in the checkpoint."""
    if tf.io.gfile.isdir(path):
        directory = path
        prefix = tf.train.latest_checkpoint(path) or f"{path}/{INIT_CHECKPOINT}"
    else:
        directory, prefix = path.rsplit("/", 1)[0] if "/" in path else ".", path
    if not tf.io.gfile.exists(prefix + ".index"):
        raise convert.ConversionError(f"{path}: no checkpoint ({prefix}.index not found)")
    config_json = config_json or f"{directory}/{CONFIG_FILE}"
    if not tf.io.gfile.exists(config_json):
        raise convert.ConversionError(f"{config_json} not found: pass the run's config.json")
    with tf.io.gfile.GFile(config_json) as f:
        cfg = ElectraConfig.from_dict(json.load(f))
    model = build_pretrainer(cfg)
    status = tf.train.Checkpoint(model=model).read(prefix)
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise convert.ConversionError(f"{prefix} does not hold this model ({config_json}): "
                                      f"{str(e).splitlines()[0][:300]}") from None
    status.expect_partial()  # a pretraining checkpoint also holds the optimizer and data
    return model
