"""keras-hub in and out: its ElectraBackbone (and BertBackbone) presets <-> our discriminator.

Out (`keras_hub_backbone`): an ElectraBackbone holding our discriminator's encoder, saved with
`save_to_preset`. In (`import_keras_hub_preset`): a preset directory (config.json +
model.weights.h5, as `save_to_preset` writes or keras-hub's downloads hold) of an
ElectraBackbone or a BertBackbone becomes our pretrainer's discriminator encoder; keras-hub
stores no discriminator head and no generator, so those start fresh (the generator
`generator_fraction` wide), as for BERT.

keras-hub computes a slightly different function from the ELECTRA recipe (and from ours and
transformers'): its FFN uses the tanh approximation of GELU, not the exact erf GELU that the
published weights were trained with; it adds a pooler (dense + tanh over [CLS]) that ELECTRA
never trained: on the way out it is left at its random initialization, on the way in it is
skipped (listed in the report); and it masks padding with a large negative rather than
-10000. The sequence outputs agree once both use the same GELU (the tests show it); the
difference from the tanh GELU alone is small (around 1e-3) but not zero.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import tensorflow as tf

from electra_tf import convert
from electra_tf.config import SIZES, ModelConfig, nearest_size
from electra_tf.convert_tf1 import full_config
from electra_tf.models import Discriminator, ElectraPretrainer, Encoder, build_pretrainer

BACKBONES = ("ElectraBackbone", "BertBackbone")  # the same layer names; BERT: no projection
POOLER = "pooled_dense"


def _pairs(backbone, encoder: Encoder) -> list[tuple]:
    """(keras-hub variable, our variable) for every weight of the encoder (not the pooler)."""
    emb = encoder.embeddings
    norm = backbone.get_layer("embeddings_layer_norm")
    pairs = [(backbone.get_layer("token_embedding").embeddings, emb.word_embeddings),
             (backbone.get_layer("position_embedding").position_embeddings,
              emb.position_embeddings),
             (backbone.get_layer("segment_embedding").embeddings, emb.token_type_embeddings),
             (norm.gamma, emb.layer_norm.gamma), (norm.beta, emb.layer_norm.beta)]
    if encoder.embeddings_project is not None:
        project = backbone.get_layer("embeddings_projection")
        pairs += [(project.kernel, encoder.embeddings_project.kernel),
                  (project.bias, encoder.embeddings_project.bias)]
    for i, block in enumerate(encoder.blocks):
        layer = backbone.get_layer(f"transformer_layer_{i}")
        attention = layer._self_attention_layer
        for theirs, ours in ((attention.query_dense, block.query), (attention.key_dense,
                             block.key), (attention.value_dense, block.value),
                             (attention.output_dense, block.attention_output),
                             (layer._feedforward_intermediate_dense, block.intermediate),
                             (layer._feedforward_output_dense, block.output_dense)):
            pairs += [(theirs.kernel, ours.kernel), (theirs.bias, ours.bias)]
        for theirs, ours in ((layer._self_attention_layer_norm, block.attention_layer_norm),
                             (layer._feedforward_layer_norm, block.output_layer_norm)):
            pairs += [(theirs.gamma, ours.gamma), (theirs.beta, ours.beta)]
    return pairs


def keras_hub_backbone(disc: Discriminator, dtype: str | None = None):
    """keras_hub.models.ElectraBackbone holding our discriminator's encoder weights.

    Differences (see the module docstring): tanh GELU in its FFN, an extra untrained pooler.
    Inputs there are named token_ids / segment_ids / padding_mask.
    """
    import keras_hub

    cfg = disc.cfg
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=cfg.vocab_size, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
        hidden_dim=cfg.hidden_size, embedding_dim=cfg.embedding_size,
        intermediate_dim=cfg.intermediate_size, dropout=cfg.hidden_dropout,
        max_sequence_length=cfg.max_position_embeddings, num_segments=cfg.type_vocab_size,
        dtype=dtype)
    for theirs, ours in _pairs(backbone, disc.encoder):
        # keras-hub's attention kernels are [H, A, H/A] / [A, H/A, H]: reshapes of ours.
        theirs.assign(np.asarray(ours.numpy()).reshape(tuple(theirs.shape)))
    return backbone


def preset_class(path: str) -> dict:
    """The backbone config of a keras-hub preset directory; refuses other model classes."""
    if not tf.io.gfile.exists(f"{path}/config.json"):
        raise convert.ConversionError(f"{path}: no config.json (not a keras-hub preset)")
    with tf.io.gfile.GFile(f"{path}/config.json") as f:
        config = json.load(f)
    if config.get("class_name") not in BACKBONES:
        raise convert.ConversionError(
            f"{path}/config.json: class_name {config.get('class_name')!r}, expected one of "
            f"{BACKBONES} (a keras-hub preset)")
    return config


def config_from_backbone(backbone, generator_fraction: float | None = None) -> ModelConfig:
    """Our ModelConfig for a keras-hub ElectraBackbone / BertBackbone."""
    cfg = ModelConfig(vocab_size=backbone.get_layer("token_embedding").input_dim,
                      embedding_size=getattr(backbone, "embedding_dim", backbone.hidden_dim),
                      hidden_size=backbone.hidden_dim, num_layers=backbone.num_layers,
                      num_heads=backbone.num_heads, intermediate_size=backbone.intermediate_dim,
                      max_position_embeddings=backbone.max_sequence_length,
                      type_vocab_size=backbone.num_segments,
                      hidden_dropout=float(backbone.dropout),
                      attention_dropout=float(backbone.dropout))
    fraction = generator_fraction or SIZES[nearest_size(cfg)].model.generator_fraction
    return dataclasses.replace(cfg, generator_fraction=fraction)


def import_keras_hub_preset(path: str, generator_fraction: float | None = None
                            ) -> tuple[ElectraPretrainer, convert.ImportReport]:
    """Our pretrainer with a keras-hub preset's encoder as the discriminator's (head and
    generator fresh); the report lists the skipped pooler."""
    import keras_hub

    preset_class(path)
    backbone = keras_hub.models.Backbone.from_preset(path)
    model = build_pretrainer(full_config(config_from_backbone(backbone, generator_fraction)))
    pairs = _pairs(backbone, model.discriminator.encoder)
    for theirs, ours in pairs:
        value = np.asarray(theirs.numpy(), np.float32)
        if value.size != int(np.prod(ours.shape)):
            raise convert.ConversionError(f"{path}: '{theirs.path}' has shape {value.shape}, "
                                          f"expected {tuple(ours.shape)} for our '{ours.path}'")
        ours.assign(value.reshape(tuple(ours.shape)))
    report = convert.ImportReport(
        path, len(pairs), 0, (), False,
        ignored=(f"{POOLER} (keras-hub's pooler)",), fresh=("discriminator head", "generator"),
        note="keras-hub's FFN uses the tanh approximation of GELU; this model computes the "
             "exact GELU (outputs differ by ~1e-3)")
    return model, report
