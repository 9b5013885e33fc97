"""Does the discriminator learn at a given learning rate? Replaced token detection with
*uniformly random* replacements (no generator), the easiest version of the task.

The discriminator of the tiny preset (vocabulary of --vocab) reads real text from TFRecord shards
(masked by the real pipeline); every masked slot gets a uniformly random token, and the loss is
the paper's discriminator loss, clipped at global norm 1, without warmup. A discriminator that
works reaches AUC ~0.99 within a few hundred steps; one stuck at 0.50 predicts the base rate.
Prints one JSON line per --report_every steps (AUC of those steps' predictions).

    .venv/bin/python experiments/discriminator_lr.py --lr 1e-3 --optimizer keras --dropout
Shards: as bench/run_pretrain_step.sh builds them from ../shared/data/corpus/web.txt.
"""

from __future__ import annotations

import argparse
import json

import keras
import numpy as np
import tensorflow as tf

from electra_tf import losses, optimization
from electra_tf.config import get_config
from electra_tf.data import pipeline
from electra_tf.models import Discriminator, scatter_at_slots
from electra_tf.tokenization import load_vocab


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--shards", default="runs/electra-bench-shards/pretrain_data*")
    p.add_argument("--vocab", default="../shared/data/vocab/corpus-wordpiece-30522.txt")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--optimizer", choices=["ours", "keras"], default="ours",
                   help="ours: the paper's AdamWeightDecay; keras: keras.optimizers.Adam")
    p.add_argument("--dropout", action="store_true", help="train with dropout (training=True)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--report_every", type=int, default=50)
    p.add_argument("--batch", type=int, default=32)
    a = p.parse_args()

    vocab = load_vocab(a.vocab)
    cfg = get_config("tiny").replace(model={"vocab_size": vocab.size})
    length = cfg.pretrain.max_seq_length
    spec = pipeline.MaskingSpec.from_config(cfg, vocab)
    batches = iter(pipeline.pretraining_dataset(a.shards, a.batch, length, spec))
    disc = Discriminator(cfg.model)
    disc.build()
    opt = (keras.optimizers.Adam(a.lr) if a.optimizer == "keras"
           else optimization.AdamWeightDecay(a.lr, aggregate_gradients=False))
    opt.build(disc.trainable_variables)

    @tf.function
    def step(batch, i):
        positions, weights = batch["masked_lm_positions"], batch["masked_lm_weights"]
        random_ids = tf.random.stateless_uniform(tf.shape(positions), tf.stack([i, 7]),
                                                 1000, vocab.size, tf.int32)
        placed, hit = scatter_at_slots(random_ids, positions, weights, length)  # [B, L]
        corrupted = tf.where(hit, placed, batch["input_ids"])  # [MASK]s and kept tokens too
        labels = tf.cast(hit, tf.int32) * tf.cast(batch["input_mask"], tf.int32)  # [B, L]
        with tf.GradientTape() as tape:
            out = disc(corrupted, batch["input_mask"], batch["segment_ids"], training=a.dropout,
                       seed=tf.stack([i, 3]) if a.dropout else None)
            loss = losses.discriminator_loss(out["disc_logits"], labels, batch["input_mask"])
        grads = tape.gradient(loss, disc.trainable_variables)
        grads, norm = tf.clip_by_global_norm(grads, 1.0)
        opt.apply_gradients(zip(grads, disc.trainable_variables))
        return loss, norm, out["disc_logits"], labels

    scores, truth = [], []  # the logging window's logits and labels (-1 = padding)
    for i in range(1, a.steps + 1):
        batch = next(batches)
        loss, norm, logits, labels = step(batch, tf.constant(i))
        scores.append(logits.numpy())
        truth.append(np.where(batch["input_mask"].numpy() == 1, labels.numpy(), -1))
        if i % a.report_every == 0:
            print(json.dumps({"lr": a.lr, "optimizer": a.optimizer, "dropout": a.dropout,
                              "step": i, "disc_loss": round(float(loss), 4),
                              "grad_norm": round(float(norm), 4),
                              "auc": round(losses.exact_auc(np.concatenate(scores),
                                                            np.concatenate(truth)), 3)}),
                  flush=True)
            scores, truth = [], []

if __name__ == "__main__":
    main()
