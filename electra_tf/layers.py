"""Keras layers of ELECTRA: embeddings, the post-LayerNorm encoder block and the heads.

Shapes: B batch, L sequence length, N masked slots per sequence, V vocabulary, E embedding
size, H hidden size, F FFN size, A attention heads.

Why not keras-hub's TransformerEncoder: it computes the same block, but we need the official
variable layout (separate query/key/value kernels, reached by one name map from the TF1 and
Hugging Face checkpoints), the attention softmax in float32 under mixed precision, and the
official -10000 additive mask; a 100-line block of our own is simpler than adapting it.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from electra_tf import fused, rng

_MASK_ADDER = -10000.0  # the official BERT/ELECTRA additive attention mask


def initializer(stddev: float) -> keras.initializers.Initializer:
    """Truncated normal at 2 stddev, as TF1's `truncated_normal_initializer` in the paper's code.

    Call it once per variable: an unseeded Keras 3 initializer draws its seed when it is
    created and then returns the same values on every call, so one object shared by two
    tables would give them identical initial values (TF1's drew anew for each variable).
    """
    return keras.initializers.TruncatedNormal(stddev=stddev)


def glorot_dense(units: int, name: str, activation=None) -> keras.layers.Dense:
    """A Dense with Keras' default Glorot-uniform kernel: the authors' plain `tf.layers.dense`
    (no kernel_initializer), used for `embeddings_project` and the discriminator's logits."""
    return keras.layers.Dense(units, activation=activation, name=name)


@tf.custom_gradient
def gelu(x: tf.Tensor):
    """Exact (erf) GELU in the authors' form, x * 0.5 * (1 + erf(x / sqrt(2))) (not the tanh
    approximation), computed in float32 whatever x's dtype, with its derivative
    Phi(x) + x * phi(x) written out.

    Same values as the paper's code; the same function as `tf.nn.gelu(x, approximate=False)`
    up to the float32 rounding of 1 + erf in the far-left tail (|error| <= |x| 2^-22).
    Forward and backward run 2.9x as fast as TF's version in bfloat16 and 1.7x in float32
    (bench/results/kernels.md): TF's runs erfc (three times an erf's cost) and the chain rule of
    its five ops in the compute dtype, and bfloat16 elementwise math has no vector kernels on
    CPU; here each pass is one vectorized float32 op, and a bfloat16 input is rounded once, at
    the end.
    """
    xf = tf.cast(x, tf.float32)
    cdf = fused.gelu_cdf(xf)  # Phi(x)

    def grad(dy):
        return tf.cast(tf.cast(dy, tf.float32) * fused.gelu_slope(xf, cdf), x.dtype)

    return tf.cast(xf * cdf, x.dtype), grad


def _dense(units: int, stddev: float, name: str, activation=None) -> keras.layers.Dense:
    return keras.layers.Dense(units, activation=activation, kernel_initializer=initializer(stddev),
                              name=name)


@keras.saving.register_keras_serializable("electra_tf")
class Embeddings(keras.layers.Layer):
    """Word + position + token-type embeddings -> LayerNorm -> dropout: ids [B, L] -> [B, L, E].

    The generator and the discriminator share one instance, so each table is one variable.
    """

    def __init__(self, vocab_size: int, embedding_size: int, max_position_embeddings: int = 512,
                 type_vocab_size: int = 2, dropout: float = 0.1, initializer_range: float = 0.02,
                 layer_norm_eps: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps, name="layer_norm")

    def build(self, input_shape=None):
        # a fresh initializer per table (see `initializer`); the tables are read in float32
        # (autocast=False) and only the gathered rows are cast: autocast would convert the
        # whole [V, E] word table to the compute dtype at every call
        std = self.initializer_range
        self.word_embeddings = self.add_weight(
            shape=(self.vocab_size, self.embedding_size), initializer=initializer(std),
            name="word_embeddings", autocast=False)
        self.position_embeddings = self.add_weight(
            shape=(self.max_position_embeddings, self.embedding_size),
            initializer=initializer(std), name="position_embeddings", autocast=False)
        self.token_type_embeddings = self.add_weight(
            shape=(self.type_vocab_size, self.embedding_size), initializer=initializer(std),
            name="token_type_embeddings", autocast=False)
        self.layer_norm.build((None, None, self.embedding_size))
        self.built = True

    def call(self, input_ids, segment_ids, training=None, seed=None):
        """ids [B, L] -> [B, L, E]; seed [2] for dropout when training."""
        length = tf.shape(input_ids)[1]
        x = tf.gather(self.word_embeddings, input_ids)  # [B, L, E] float32
        x += tf.gather(self.token_type_embeddings, segment_ids)
        x += self.position_embeddings[tf.newaxis, :length]
        x = tf.cast(x, self.compute_dtype)
        (seed,) = dropout_seeds(seed, training, 1)
        return dropout(self.layer_norm(x), self.dropout_rate, seed)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, embedding_size=self.embedding_size,
                      max_position_embeddings=self.max_position_embeddings,
                      type_vocab_size=self.type_vocab_size, dropout=self.dropout_rate,
                      initializer_range=self.initializer_range, layer_norm_eps=self.layer_norm_eps)
        return config


def attention_mask_adder(input_mask: tf.Tensor) -> tf.Tensor:
    """[B, L] 1/0 mask -> [B, 1, 1, L] float32 adder: 0 for tokens, -10000 for padding."""
    mask = tf.cast(input_mask, tf.float32)[:, tf.newaxis, tf.newaxis, :]
    return (1.0 - mask) * _MASK_ADDER


@keras.saving.register_keras_serializable("electra_tf")
class TransformerBlock(keras.layers.Layer):
    """Post-LayerNorm BERT block: x + attention -> LN -> x + FFN(GELU) -> LN. [B, L, H] -> same.

    The Dense and LayerNormalization sublayers hold the variables (official layout: query, key,
    value, ...); `call` passes their values to `_block`, one shared tf.function for all blocks,
    which multiplies on [B*L, H] rows with Q, K and V in one matmul: plain 2-D matmuls run
    faster on CPU than broadcast batch matmuls, and one trace of a lean graph serves all layers.
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int,
                 hidden_dropout: float = 0.1, attention_dropout: float = 0.1,
                 initializer_range: float = 0.02, layer_norm_eps: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size={hidden_size} is not divisible by num_heads={num_heads}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        std = initializer_range
        self.query = _dense(hidden_size, std, "query")
        self.key = _dense(hidden_size, std, "key")
        self.value = _dense(hidden_size, std, "value")
        self.attention_output = _dense(hidden_size, std, "attention_output")
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, name="attention_layer_norm")
        self.intermediate = _dense(intermediate_size, std, "intermediate", activation=gelu)
        self.output_dense = _dense(hidden_size, std, "output")
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, name="output_layer_norm")

    def build(self, input_shape):
        h, f = self.hidden_size, self.intermediate_size
        for layer in (self.query, self.key, self.value, self.attention_output):
            layer.build((None, h))
        self.attention_layer_norm.build((None, h))
        self.intermediate.build((None, h))
        self.output_dense.build((None, f))
        self.output_layer_norm.build((None, h))
        self.built = True

    def call(self, x, mask_adder, training=None, seed=None):
        """x [B, L, H]; mask_adder [B, 1, 1, L] from `attention_mask_adder`; seed [2] for
        dropout when training (see `dropout_seeds`)."""
        # the variables' values (Dense weights autocast to the compute dtype, LayerNorm's not)
        weights = {name: tf.convert_to_tensor(getattr(getattr(self, layer), part))
                   for name, (layer, part) in _BLOCK_WEIGHTS.items()}
        seed = training_seed(seed, training)
        return _block_function(x, mask_adder, seed, weights,
                               self.num_heads, self.hidden_dropout, self.attention_dropout,
                               self.layer_norm_eps)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_heads=self.num_heads,
                      intermediate_size=self.intermediate_size, hidden_dropout=self.hidden_dropout,
                      attention_dropout=self.attention_dropout,
                      initializer_range=self.initializer_range, layer_norm_eps=self.layer_norm_eps)
        return config


# name in `_block` -> (sublayer of TransformerBlock, its weight)
_BLOCK_WEIGHTS = {
    f"{layer}_{part}": (layer, part)
    for layer, parts in [("query", ("kernel", "bias")), ("key", ("kernel", "bias")),
                         ("value", ("kernel", "bias")), ("attention_output", ("kernel", "bias")),
                         ("attention_layer_norm", ("gamma", "beta")),
                         ("intermediate", ("kernel", "bias")), ("output_dense", ("kernel", "bias")),
                         ("output_layer_norm", ("gamma", "beta"))]
    for part in parts}


def _block(x, mask_adder, seed, w, num_heads, hidden_dropout, attention_dropout, eps):
    """The computation of `TransformerBlock.call` on explicit weights `w` (the variables'
    values; see `_BLOCK_WEIGHTS`); `seed` None (no dropout) or the block's dropout seed.
    x [B, L, H] in the compute dtype -> the same.

    A pure function of tensors, so one tf.function trace (and one traced gradient) serves every
    block of a model: tracing 24 blocks one by one took a third of the first training step.
    """
    dtype = x.dtype
    h = x.shape[-1]
    a = num_heads
    training = seed is not None
    seeds = rng.split(seed, 3) if training else [None] * 3
    # Constant factors are folded into the small kernels instead of applied to activations:
    # 1 / sqrt(H/A) into the query projection, each dropout's 1 / (1 - rate) into the
    # projection whose output it drops (the attention probabilities' into the values, as
    # drop(p) @ (s v) = s (drop(p) @ v)). The function is the same; the [B, A, L, L] scores
    # and the [B*L, H] rows are each passed over once less, forward and backward.
    keep_scale = (lambda rate: 1.0 / (1.0 - rate)) if training else (lambda rate: 1.0)

    def kernel(name, scale=1.0):  # a variable's value times scale, in the compute dtype
        return tf.cast(w[name] * scale if scale != 1.0 else w[name], dtype)

    def dense(rows, name):  # rows [M, in] @ kernel + bias
        return tf.matmul(rows, kernel(f"{name}_kernel")) + kernel(f"{name}_bias")

    def keep(y, rate, seed):  # the kept units of a dropout of y, None at rate 0
        return None if rate == 0.0 else rng.keep_units(tf.shape(y), rate, seed)

    shape = tf.shape(x)
    rows = tf.reshape(x, [-1, h])  # [B*L, H]
    q_scale, v_scale = 1.0 / math.sqrt(h / a), keep_scale(attention_dropout)
    qkv_kernel = tf.concat([w["query_kernel"] * q_scale, w["key_kernel"],
                            w["value_kernel"] * v_scale], axis=1)
    qkv_bias = tf.concat([w["query_bias"] * q_scale, w["key_bias"],
                          w["value_bias"] * v_scale], axis=0)
    qkv = tf.matmul(rows, tf.cast(qkv_kernel, dtype)) + tf.cast(qkv_bias, dtype)  # [B*L, 3H]
    qkv = tf.reshape(qkv, [shape[0], shape[1], 3, a, h // a])
    q, k, v = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))  # each [B, A, L, H/A]
    scores = tf.matmul(q, k, transpose_b=True)  # [B, A, L, L], scaled
    if training:  # mask + softmax + dropout as one compiled kernel each way
        probs = fused.attention_probs(scores, mask_adder,
                                      keep(scores, attention_dropout, seeds[0]))
    else:
        probs = tf.nn.softmax(tf.cast(scores, tf.float32) + tf.cast(mask_adder, tf.float32))
        probs = tf.cast(probs, dtype)  # float32 softmax
    context = tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3])  # [B, L, A, H/A]
    context = tf.reshape(context, [-1, h])  # [B*L, H]
    gamma1, beta1 = w["attention_layer_norm_gamma"], w["attention_layer_norm_beta"]
    gamma2, beta2 = w["output_layer_norm_gamma"], w["output_layer_norm_beta"]
    if not training:  # plain TF ops, which every runtime serving an export runs
        rows = _layer_norm(rows + dense(context, "attention_output"), gamma1, beta1, eps)
        ffn = dense(gelu(dense(rows, "intermediate")), "output_dense")  # [B*L, H]
        return tf.reshape(_layer_norm(rows + ffn, gamma2, beta2, eps), shape)
    # training: the chains between the matmuls run as compiled kernels (electra_tf/fused.py):
    # bias + dropout + residual + LayerNorm, bias + GELU, forward and backward
    s = keep_scale(hidden_dropout)
    attended = tf.matmul(context, kernel("attention_output_kernel", s))  # [B*L, H], no bias
    rows = fused.add_norm(attended, w["attention_output_bias"] * s,
                          keep(attended, hidden_dropout, seeds[1]), rows, gamma1, beta1, eps)
    hidden = fused.bias_gelu(tf.matmul(rows, kernel("intermediate_kernel")),
                             w["intermediate_bias"])  # [B*L, F]
    ffn = tf.matmul(hidden, kernel("output_dense_kernel", s))  # [B*L, H], no bias
    rows = fused.add_norm(ffn, w["output_dense_bias"] * s, keep(ffn, hidden_dropout, seeds[2]),
                          rows, gamma2, beta2, eps)
    return tf.reshape(rows, shape)


_block_function = tf.function(_block, autograph=False, experimental_attributes={"_noinline": True})


def _layer_norm(x, gamma, beta, eps):
    """keras.layers.LayerNormalization's function (statistics in float32) with given weights,
    x [M, H] -> the same, and its gradient written out.

    TF's gradient of the moments form materializes tiled means and variances and passes over
    [M, H] about twenty times; the closed form (`fused.layer_norm_grads`) needs eleven. Forward
    and backward on [4096, 256] in bfloat16: 6.0 against 8.5 ms (bench/results/kernels.md).
    """
    dtype = x.dtype

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        xf = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(xf, axes=[-1], keepdims=True)  # [M, 1] each
        inv = tf.math.rsqrt(variance + eps)
        xhat = (xf - mean) * inv  # [M, H]

        def grad(dy):
            dx, dgamma, dbeta = fused.layer_norm_grads(tf.cast(dy, tf.float32), xhat, inv, gamma)
            return tf.cast(dx, dtype), dgamma, dbeta

        return tf.cast(xhat * gamma + beta, dtype), grad

    return normalize(x, gamma, beta)


def dropout(x: tf.Tensor, rate: float, seed: tf.Tensor | None) -> tf.Tensor:
    """Inverted dropout from a stateless seed; identity when seed is None or rate is 0.

    Stateless: the mask depends only on the seed, which the training loop derives from
    (run seed, step, replica), so a resumed run drops exactly the same units, and no random
    state has to be checkpointed.
    """
    if seed is None or rate == 0.0:
        return x
    return drop_units(x * tf.cast(1.0 / (1.0 - rate), x.dtype), rate, seed)


def drop_units(x: tf.Tensor, rate: float, seed: tf.Tensor) -> tf.Tensor:
    """Dropout's zeros without its 1 / (1 - rate) scale, which the caller has folded into the
    weights that produced x (a pass over a small kernel instead of one over the activations).

    The keep mask is drawn once and reused by the gradient: dy flows where x was kept.
    """
    return _select(x, rng.keep_units(tf.shape(x), rate, seed))


@tf.custom_gradient
def _select(x, keep):
    """x where keep, else 0; one pass each way (a scalar zero, no zeros_like)."""
    zero = tf.zeros([], x.dtype)
    return tf.where(keep, x, zero), lambda dy: (tf.where(keep, dy, tf.zeros([], dy.dtype)), None)


def training_seed(seed: tf.Tensor | None, training) -> tf.Tensor | None:
    """The dropout seed to use: None when not training; a random one when training without a
    seed (not reproducible; the training loop always passes one)."""
    if not training:
        return None
    if seed is None:
        return tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
    return seed


def dropout_seeds(seed: tf.Tensor | None, training, count: int) -> list:
    """`count` independent dropout seeds from one seed, or Nones when not training."""
    seed = training_seed(seed, training)
    return [None] * count if seed is None else rng.split(seed, count)


@keras.saving.register_keras_serializable("electra_tf")
class MaskedLMHead(keras.layers.Layer):
    """Tied MLM head at the masked slots only: dense(E, GELU) -> LN -> x W_word^T + bias.

    Reads the shared word table of `embeddings`; its own variables are the dense, the LayerNorm
    and the output bias. sequence [B, L, Hg], positions [B, N] -> float32 logits [B, N, V].
    """

    def __init__(self, embeddings: Embeddings, initializer_range: float = 0.02,
                 layer_norm_eps: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        if isinstance(embeddings, dict):  # from get_config
            embeddings = keras.saving.deserialize_keras_object(embeddings)
        self.embeddings = embeddings
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.dense = _dense(embeddings.embedding_size, initializer_range, "dense", activation=gelu)
        self.layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps, name="layer_norm")

    def build(self, input_shape):
        if not self.embeddings.built:
            self.embeddings.build()
        self.dense.build((None, None, input_shape[-1]))
        self.layer_norm.build((None, None, self.embeddings.embedding_size))
        self.output_bias = self.add_weight(shape=(self.embeddings.vocab_size,),
                                           initializer="zeros", name="output_bias")
        self.built = True

    def call(self, sequence, positions):
        x = tf.gather(sequence, positions, batch_dims=1)  # [B, N, Hg]
        x = self.layer_norm(self.dense(x))  # [B, N, E]
        table = tf.cast(self.embeddings.word_embeddings, x.dtype)
        # one 2-D matmul over the B*N slots: a [B, N, E] x [V, E]^T batch matmul broadcasts the
        # table, and its gradient then writes B tables of [V, E] and sums them
        shape = tf.shape(x)
        slots = tf.reshape(x, [-1, x.shape[-1]])  # [B*N, E]
        logits = tf.reshape(tf.matmul(slots, table, transpose_b=True),
                            tf.concat([shape[:-1], [-1]], 0))  # [B, N, V]
        bias = tf.convert_to_tensor(self.output_bias)  # (autocast as a Dense bias is)
        return fused.bias_float32(logits, bias)  # [B, N, V] float32

    def get_config(self):
        config = super().get_config()
        config.update(embeddings=keras.saving.serialize_keras_object(self.embeddings),
                      initializer_range=self.initializer_range, layer_norm_eps=self.layer_norm_eps)
        return config


@keras.saving.register_keras_serializable("electra_tf")
class DiscriminatorHead(keras.layers.Layer):
    """Replaced-token-detection head: dense(H, GELU) -> dense(1). [B, L, H] -> float32 [B, L].

    As the authors' `_get_discriminator_output`: the hidden dense is truncated normal
    (initializer_range), the logits dense Glorot uniform (a plain `tf.layers.dense`).
    """

    def __init__(self, hidden_size: int, initializer_range: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        self.dense = _dense(hidden_size, initializer_range, "dense", activation=gelu)
        self.logits = glorot_dense(1, "logits")

    def build(self, input_shape):
        self.dense.build((None, None, self.hidden_size))
        self.logits.build((None, None, self.hidden_size))
        self.built = True

    def call(self, sequence):
        return tf.cast(tf.squeeze(self.logits(self.dense(sequence)), -1), tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, initializer_range=self.initializer_range)
        return config
