"""Analytic model FLOPs: the one formula every benchmark and experiment uses.

A multiply-add is 2 FLOPs; training = 3 x forward. Per token, forward, hidden H, FFN F, length L:
each layer 8H^2 + 4HF + 4LH; embedding projection 2EH when E != H; discriminator head
2H^2 + 2H. The MLM head runs at the N masked slots only: 2 Hg E + 2 E V per slot.
"""

from __future__ import annotations

from electra_tf.config import ModelConfig


def encoder_flops_per_token(hidden: int, ffn: int, layers: int, length: int,
                            embedding: int) -> int:
    """Forward FLOPs per token of an encoder (projection included when embedding != hidden)."""
    per_layer = 8 * hidden * hidden + 4 * hidden * ffn + 4 * length * hidden
    projection = 2 * embedding * hidden if embedding != hidden else 0
    return layers * per_layer + projection


def discriminator_flops_per_token(m: ModelConfig, length: int) -> int:
    head = 2 * m.hidden_size * m.hidden_size + 2 * m.hidden_size
    return encoder_flops_per_token(m.hidden_size, m.intermediate_size, m.num_layers, length,
                                   m.embedding_size) + head


def generator_flops_per_token(m: ModelConfig, length: int) -> int:
    return encoder_flops_per_token(m.generator_hidden_size, m.generator_intermediate_size,
                                   m.num_layers, length, m.embedding_size)


def mlm_head_flops_per_slot(m: ModelConfig) -> int:
    return 2 * m.generator_hidden_size * m.embedding_size + 2 * m.embedding_size * m.vocab_size


def electra_train_flops(m: ModelConfig, batch: int, length: int, num_predictions: int) -> int:
    """FLOPs of one ELECTRA pretraining step (generator + discriminator, forward + backward)."""
    per_token = discriminator_flops_per_token(m, length) + generator_flops_per_token(m, length)
    return 3 * batch * (length * per_token + num_predictions * mlm_head_flops_per_slot(m))


def mlm_train_flops(m: ModelConfig, batch: int, length: int, num_predictions: int) -> int:
    """FLOPs of one masked-LM-only step with the discriminator-sized encoder (BERT objective)."""
    head = 2 * m.hidden_size * m.embedding_size + 2 * m.embedding_size * m.vocab_size
    per_token = encoder_flops_per_token(m.hidden_size, m.intermediate_size, m.num_layers, length,
                                        m.embedding_size)
    return 3 * batch * (length * per_token + num_predictions * head)
