"""The official TF1 checkpoints (google-research/electra): read, infer the config, load, write.

A released checkpoint (`electra_small`, `electra_base`, `electra_large`) or one from the
official `run_pretraining.py` holds the discriminator under `electra/`, the generator under
`generator/`, the shared embeddings under `electra/embeddings/` and the heads under
`discriminator_predictions/` and `generator_predictions/` (names in convert.py's table).
Pretraining checkpoints also hold Adam slots (`<name>/adam_m`, `<name>/adam_v`) and
`global_step`: a warm start takes weights only, so these are skipped. Anything else that the
name map does not cover is reported, never silently dropped.

The original BERT checkpoints (google-research/bert: `bert/embeddings/...`,
`bert/encoder/layer_N/...`) load as the discriminator's encoder: the same network with
embedding size = hidden size. Their pooler (`bert/pooler/`) and pretraining heads (`cls/`:
masked LM and next-sentence prediction) are listed as skipped; the discriminator head and the
generator (a `generator_fraction` of the width, with its own `embeddings_project`) start fresh,
so pretraining continues with ELECTRA's objective.

What a checkpoint cannot tell: the number of attention heads (not part of any shape). It is
read from a `bert_config.json` (or transformers' `config.json`) beside the checkpoint when there
is one; else hidden / 64, as in every official ELECTRA and BERT model; `num_heads` overrides.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf import convert
from electra_tf.config import SIZES, ElectraConfig, ModelConfig, PretrainConfig, nearest_size
from electra_tf.models import ElectraPretrainer, build_pretrainer

OPTIMIZER_SLOTS = ("/adam_m", "/adam_v")  # the official AdamWeightDecayOptimizer's slots
BOOKKEEPING = ("global_step",)
SCOPES = ("electra", "bert")  # the discriminator's (or BERT's) encoder scope
BERT_EXTRAS = ("bert/pooler/", "cls/")  # BERT's pooler and MLM/NSP heads: not ELECTRA's
SIDE_CONFIGS = ("bert_config.json", "config.json")  # where the head count may be written


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
                                      "shape; is this an official ELECTRA or BERT checkpoint?)")
    return tuple(state[name].shape)


def _layers(state: dict, scope: str) -> int:
    n = 0
    while f"{scope}/encoder/layer_{n}/attention/self/query/kernel" in state:
        n += 1
    return n


def checkpoint_scope(state: dict, path: str) -> str:
    """'electra' (official ELECTRA) or 'bert' (original BERT): the encoder's variable scope."""
    for scope in SCOPES:
        if f"{scope}/embeddings/word_embeddings" in state:
            return scope
    raise convert.ConversionError(
        f"{path}: neither 'electra/embeddings/word_embeddings' nor 'bert/embeddings/"
        "word_embeddings' found: not an official ELECTRA or BERT checkpoint")


def heads_from_side_config(path: str) -> int | None:
    """num_attention_heads from a bert_config.json / config.json beside the checkpoint."""
    directory = path if tf.io.gfile.isdir(path) else path.rsplit("/", 1)[0] if "/" in path else "."
    for name in SIDE_CONFIGS:
        side = f"{directory}/{name}"
        if tf.io.gfile.exists(side):
            with tf.io.gfile.GFile(side) as f:
                heads = json.load(f).get("num_attention_heads")
            if heads is not None:
                logging.info("attention heads from %s: %d", side, heads)
                return int(heads)
    return None


def _generator_fraction(state: dict, path: str, hidden: int, layers: int) -> float | None:
    """The checkpoint's generator width / the discriminator's, None without a generator."""
    if not _layers(state, "generator"):
        return None
    gen_hidden = _shape(state, "generator/encoder/layer_0/attention/self/query/kernel", path)[1]
    gen_ffn = _shape(state, "generator/encoder/layer_0/intermediate/dense/kernel", path)[1]
    if _layers(state, "generator") != layers or gen_ffn != 4 * gen_hidden:
        raise convert.ConversionError(
            f"{path}: generator has {_layers(state, 'generator')} layers and FFN {gen_ffn};"
            f" expected {layers} layers (the discriminator's) and FFN 4 x {gen_hidden}")
    fraction = gen_hidden / hidden
    if max(1, int(round(hidden * fraction))) != gen_hidden:
        raise convert.ConversionError(f"{path}: generator hidden size {gen_hidden} is not "
                                      f"expressible as a fraction of {hidden}")
    return fraction


def config_from_tf1(state: dict[str, np.ndarray], path: str = "checkpoint",
                    num_heads: int | None = None,
                    generator_fraction: float | None = None) -> ModelConfig:
    """Infers our ModelConfig from the checkpoint's shapes (released Small: generator 1.0).

    Heads: `num_heads`, else a side config's, else hidden / 64. Without a generator in the
    checkpoint (BERT, a discriminator alone) its width is `generator_fraction`, else the
    nearest published size's. Raises ConversionError when the generator is not one our config
    can express (its depth, FFN or head count must follow the official `get_generator_config`).
    """
    scope = checkpoint_scope(state, path)
    vocab_size, embedding_size = _shape(state, f"{scope}/embeddings/word_embeddings", path)
    max_positions, _ = _shape(state, f"{scope}/embeddings/position_embeddings", path)
    type_vocab, _ = _shape(state, f"{scope}/embeddings/token_type_embeddings", path)
    hidden = _shape(state, f"{scope}/encoder/layer_0/attention/self/query/kernel", path)[1]
    intermediate = _shape(state, f"{scope}/encoder/layer_0/intermediate/dense/kernel", path)[1]
    layers = _layers(state, scope)
    heads = num_heads or heads_from_side_config(path) or max(1, hidden // 64)
    found = _generator_fraction(state, path, hidden, layers) if scope == "electra" else None
    cfg = ModelConfig(vocab_size=vocab_size, embedding_size=embedding_size, hidden_size=hidden,
                      num_layers=layers, num_heads=heads, intermediate_size=intermediate,
                      max_position_embeddings=max_positions, type_vocab_size=type_vocab)
    fraction = found or generator_fraction or SIZES[nearest_size(cfg)].model.generator_fraction
    return dataclasses.replace(cfg, generator_fraction=fraction)


def full_config(model_cfg: ModelConfig) -> ElectraConfig:
    """Our run config for an imported model: the recipe of the nearest published size (e.g.
    Small's for a 6-layer, 384-wide encoder); max_seq_length within the position table."""
    pretrain = SIZES[nearest_size(model_cfg)].pretrain
    length = min(pretrain.max_seq_length, model_cfg.max_position_embeddings)
    pretrain = PretrainConfig(**{**dataclasses.asdict(pretrain), "max_seq_length": length})
    return ElectraConfig(model=model_cfg, pretrain=pretrain)


def load_tf1_weights(model: ElectraPretrainer, path: str,
                     require_generator: bool = False) -> convert.ImportReport:
    """Copies an official ELECTRA or BERT TF1 checkpoint into our pretrainer via the name map.

    Missing or mis-shaped variables raise ConversionError (naming them). A checkpoint without
    a generator (e.g. a fine-tuned discriminator, or BERT) loads the discriminator only, unless
    `require_generator`; one without the RTD head leaves it fresh. BERT's pooler and heads
    are listed as skipped; anything else left unmatched is returned in the report and logged.
    """
    state, skipped = read_tf1_checkpoint(path)
    tf1 = lambda name: (convert.tf1_name(name), False)  # noqa: E731
    scope = checkpoint_scope(state, path)
    if scope == "bert":
        tf1 = convert.rebased(tf1, "electra/", "bert/")
    used, fresh = convert.load_discriminator(model, state, f"{path} (discriminator)", tf1)
    has_generator = any(n.startswith(("generator/", "generator_predictions/")) for n in state)
    if has_generator or require_generator:
        used |= convert.assign_by_name(
            convert.generator_variables(model.generator, with_embeddings=False), state,
            f"{path} (generator)", tf1)
    return convert.make_report(path, state, used, skipped, has_generator or require_generator,
                               fresh, BERT_EXTRAS if scope == "bert" else ())


def import_tf1_checkpoint(path: str, num_heads: int | None = None,
                          generator_fraction: float | None = None
                          ) -> tuple[ElectraPretrainer, convert.ImportReport]:
    """Builds the matching pretrainer for an official ELECTRA or BERT checkpoint and loads it."""
    state, _ = read_tf1_checkpoint(path)
    cfg = config_from_tf1(state, path, num_heads, generator_fraction)
    model = build_pretrainer(full_config(cfg))
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
