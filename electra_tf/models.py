"""ELECTRA models: encoder, generator, discriminator and the joint pretrainer.

Legend: B batch, L sequence length, N masked slots per sequence (max_predictions_per_seq),
V vocabulary, E embedding size, H discriminator hidden size, Hg generator hidden size.

Batch keys (the same names as the TFRecords and the serving signatures):
  input_ids [B, L] int32 (already masked for pretraining), input_mask [B, L], segment_ids [B, L],
  masked_lm_positions [B, N], masked_lm_ids [B, N], masked_lm_weights [B, N] float32.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf import rng, sampling
from electra_tf.config import ElectraConfig, ModelConfig
from electra_tf.layers import (
    DiscriminatorHead,
    Embeddings,
    MaskedLMHead,
    TransformerBlock,
    attention_mask_adder,
    dropout_seeds,
    glorot_dense,
)


@keras.saving.register_keras_serializable("electra_tf")
class Encoder(keras.layers.Layer):
    """Embeddings (possibly shared) -> projection E -> H when they differ -> N blocks.

    (input_ids, input_mask, segment_ids) [B, L] -> sequence output [B, L, H].
    """

    def __init__(self, embeddings: Embeddings, hidden_size: int, num_layers: int, num_heads: int,
                 intermediate_size: int, hidden_dropout: float = 0.1,
                 attention_dropout: float = 0.1, initializer_range: float = 0.02,
                 layer_norm_eps: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        if isinstance(embeddings, dict):  # from get_config
            embeddings = keras.saving.deserialize_keras_object(embeddings)
        self.embeddings = embeddings
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.embeddings_project = None
        if embeddings.embedding_size != hidden_size:
            # Glorot uniform, as the authors' plain tf.layers.dense (transformers: normal 0.02)
            self.embeddings_project = glorot_dense(hidden_size, "embeddings_project")
        self.blocks = [
            TransformerBlock(hidden_size, num_heads, intermediate_size, hidden_dropout,
                             attention_dropout, initializer_range, layer_norm_eps,
                             name=f"layer_{i}")
            for i in range(num_layers)]
        for i, block in enumerate(self.blocks):
            # Keras tracks the list for its weights, but tf.train.Checkpoint follows only TF
            # dependencies: without these, a checkpoint of the model alone (a warm start's
            # --init_checkpoint) would omit every block.
            self._track_trackable(block, name=f"layer_{i}")

    def build(self, input_shape=None):
        if not self.embeddings.built:
            self.embeddings.build()
        if self.embeddings_project is not None:
            self.embeddings_project.build((None, None, self.embeddings.embedding_size))
        for block in self.blocks:
            block.build((None, None, self.hidden_size))
        self.built = True

    def call(self, input_ids, input_mask, segment_ids, training=None, seed=None):
        """seed: [2] stateless seed for dropout when training (None draws a random one)."""
        seeds = dropout_seeds(seed, training, self.num_layers + 1)
        x = self.embeddings(input_ids, segment_ids, training=training, seed=seeds[0])  # [B,L,E]
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)  # [B, L, H]
        mask_adder = attention_mask_adder(input_mask)  # [B, 1, 1, L]
        for block, block_seed in zip(self.blocks, seeds[1:]):
            x = block(x, mask_adder, training=training, seed=block_seed)
        return x

    def get_config(self):
        config = super().get_config()
        config.update(embeddings=keras.saving.serialize_keras_object(self.embeddings),
                      hidden_size=self.hidden_size, num_layers=self.num_layers,
                      num_heads=self.num_heads, intermediate_size=self.intermediate_size,
                      hidden_dropout=self.hidden_dropout, attention_dropout=self.attention_dropout,
                      initializer_range=self.initializer_range, layer_norm_eps=self.layer_norm_eps)
        return config


def embeddings_from_config(cfg: ModelConfig) -> Embeddings:
    return Embeddings(cfg.vocab_size, cfg.embedding_size, cfg.max_position_embeddings,
                      cfg.type_vocab_size, cfg.hidden_dropout, cfg.initializer_range,
                      cfg.layer_norm_eps, name="embeddings")


def encoder_from_config(cfg: ModelConfig, embeddings: Embeddings, generator: bool = False,
                        name: str = "encoder") -> Encoder:
    """The discriminator's encoder, or with generator=True the generator's (derived width)."""
    if generator:
        sizes = (cfg.generator_hidden_size, cfg.num_layers, cfg.generator_num_heads,
                 cfg.generator_intermediate_size)
    else:
        sizes = (cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.intermediate_size)
    return Encoder(embeddings, *sizes, hidden_dropout=cfg.hidden_dropout,
                   attention_dropout=cfg.attention_dropout,
                   initializer_range=cfg.initializer_range, layer_norm_eps=cfg.layer_norm_eps,
                   name=name)


class Discriminator(keras.Model):
    """Encoder + replaced-token-detection head. Returns sequence [B, L, H] and logits [B, L]."""

    def __init__(self, cfg: ModelConfig, embeddings: Embeddings | None = None, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.encoder = encoder_from_config(cfg, embeddings or embeddings_from_config(cfg))
        self.head = DiscriminatorHead(cfg.hidden_size, cfg.initializer_range,
                                      name="discriminator_predictions")

    def build(self, input_shape=None):
        self.encoder.build()
        self.head.build((None, None, self.cfg.hidden_size))
        self.built = True

    def call(self, input_ids, input_mask, segment_ids, training=None, seed=None):
        sequence = self.encoder(input_ids, input_mask, segment_ids, training=training, seed=seed)
        return {"sequence_output": sequence, "disc_logits": self.head(sequence)}


class Generator(keras.Model):
    """Small masked LM over the shared embeddings: logits at the N masked slots [B, N, V]."""

    def __init__(self, cfg: ModelConfig, embeddings: Embeddings, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.encoder = encoder_from_config(cfg, embeddings, generator=True)
        self.head = MaskedLMHead(embeddings, cfg.initializer_range, cfg.layer_norm_eps,
                                 name="generator_predictions")

    def build(self, input_shape=None):
        self.encoder.build()
        self.head.build((None, None, self.cfg.generator_hidden_size))
        self.built = True

    def call(self, input_ids, input_mask, segment_ids, masked_lm_positions, training=None,
             seed=None):
        sequence = self.encoder(input_ids, input_mask, segment_ids, training=training, seed=seed)
        return self.head(sequence, masked_lm_positions)


def scatter_at_slots(values: tf.Tensor, positions: tf.Tensor, weights: tf.Tensor,
                     length: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Places per-slot int values [B, N] at their positions in a [B, L] row.

    Slots with weight 0 (unused) are ignored. Returns (values [B, L], hit [B, L] bool).
    If a position were listed twice, the larger value wins (no averaging of token ids).
    """
    live = tf.cast(weights > 0, tf.int32)[:, :, tf.newaxis]  # [B, N, 1]
    onehot = tf.one_hot(positions, length, dtype=tf.int32) * live  # [B, N, L]
    hit = tf.reduce_max(onehot, axis=1) > 0  # [B, L]
    placed = tf.reduce_max(onehot * values[:, :, tf.newaxis], axis=1)  # [B, L]
    return placed, hit


class ElectraPretrainer(keras.Model):
    """Generator + discriminator trained jointly by replaced token detection.

    `call(batch, training, seed)` takes a masked batch (see the module docstring) and returns:
      mlm_logits [B, N, V] float32, sampled_ids [B, N], corrupted_ids [B, L] (the discriminator's
      input), is_replaced [B, L] int32 labels, disc_logits [B, L] float32.
    `seed` is a stateless-random seed [2] int32 for the sampling and dropout; the
    training loop passes one derived from (run seed, step, replica), so runs are reproducible
    and resume exactly. Default: a fixed seed for sampling, a random one for dropout.
    """

    def __init__(self, config: ElectraConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        model_cfg = config.model
        self.embeddings = embeddings_from_config(model_cfg)
        self.discriminator = Discriminator(model_cfg, self.embeddings, name="discriminator")
        self.generator = Generator(model_cfg, self.embeddings, name="generator")

    def build(self, input_shape=None):
        self.embeddings.build()
        self.discriminator.build()
        self.generator.build()
        self.built = True

    def call(self, batch, training=None, seed=None):
        pre = self.config.pretrain
        input_ids, input_mask, segment_ids = (batch["input_ids"], batch["input_mask"],
                                              batch["segment_ids"])
        positions, weights = batch["masked_lm_positions"], batch["masked_lm_weights"]
        if seed is None:
            sample_seed = rng.stream(tf.constant([pre.seed, 0], tf.int32), "sampling")
            gen_seed = disc_seed = None  # dropout (if training) draws random seeds
        else:
            sample_seed = rng.stream(seed, "sampling")
            gen_seed = rng.stream(seed, "generator_dropout")
            disc_seed = rng.stream(seed, "discriminator_dropout")
        mlm_logits = self.generator(input_ids, input_mask, segment_ids, positions,
                                    training=training, seed=gen_seed)  # [B, N, V]
        disallow = batch["masked_lm_ids"] if pre.disallow_correct else None
        sampled_ids = sampling.sample(mlm_logits, sample_seed, pre.temperature,
                                      disallow)  # [B, N]
        replaced_slots = tf.cast(tf.not_equal(sampled_ids, batch["masked_lm_ids"]), tf.int32)
        placed, hit = scatter_at_slots(sampled_ids, positions, weights, tf.shape(input_ids)[1])
        corrupted_ids = tf.where(hit, placed, input_ids)  # [B, L]
        is_replaced, _ = scatter_at_slots(replaced_slots, positions, weights,
                                          tf.shape(input_ids)[1])
        is_replaced *= tf.cast(input_mask, tf.int32)  # [B, L]
        disc = self.discriminator(corrupted_ids, input_mask, segment_ids, training=training,
                                  seed=disc_seed)
        return {"mlm_logits": mlm_logits, "sampled_ids": sampled_ids,
                "corrupted_ids": corrupted_ids, "is_replaced": is_replaced,
                "disc_logits": disc["disc_logits"]}


class MaskedLMPretrainer(keras.Model):
    """The BERT baseline (`objective="mlm"`): a masked LM on the discriminator-sized encoder.

    Same embeddings and encoder as the discriminator, under the same checkpoint names
    (`discriminator/...`), so fine-tuning and export load it exactly as an ELECTRA
    discriminator; a tied MLM head of hidden size H replaces the generator. The discriminator's
    RTD head exists (fine-tuning expects the full discriminator) but is frozen and unused.
    `call(batch, training, seed)` returns mlm_logits [B, N, V] float32 and, for the shared
    metrics, sampled_ids [B, N] (the argmax).
    """

    def __init__(self, config: ElectraConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.embeddings = embeddings_from_config(config.model)
        self.discriminator = Discriminator(config.model, self.embeddings, name="discriminator")
        self.discriminator.head.trainable = False
        self.mlm_head = MaskedLMHead(self.embeddings, config.model.initializer_range,
                                     config.model.layer_norm_eps, name="mlm_predictions")

    def build(self, input_shape=None):
        self.embeddings.build()
        self.discriminator.build()
        self.mlm_head.build((None, None, self.config.model.hidden_size))
        self.built = True

    def call(self, batch, training=None, seed=None):
        if seed is not None:
            seed = rng.stream(seed, "discriminator_dropout")
        sequence = self.discriminator.encoder(batch["input_ids"], batch["input_mask"],
                                              batch["segment_ids"], training=training,
                                              seed=seed)  # [B, L, H]
        mlm_logits = self.mlm_head(sequence, batch["masked_lm_positions"])  # [B, N, V]
        return {"mlm_logits": mlm_logits,
                "sampled_ids": tf.argmax(mlm_logits, axis=-1, output_type=tf.int32)}


def build_pretrainer(config: ElectraConfig) -> ElectraPretrainer | MaskedLMPretrainer:
    """Creates and builds the pretrainer of `config.pretrain.objective` (all variables exist
    afterwards)."""
    if config.pretrain.objective == "mlm":
        model = MaskedLMPretrainer(config, name="mlm")
    else:
        model = ElectraPretrainer(config, name="electra")
    model.build()
    return model
