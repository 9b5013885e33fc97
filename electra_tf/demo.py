"""`make demo`: a short ELECTRA pretraining of the tiny model on synthetic text, end to end.

The text comes from a random sparse Markov chain (each token has a few likely successors), so
there is something to learn: the generator's MLM loss and the discriminator's loss both fall,
and the discriminator's AUC rises well above 0.5. It runs the real model, masking, sampling,
losses, optimizer and training step; the full text -> vocab -> TFRecord -> fine-tune -> serve
pipeline replaces this once the data and pretraining commands land.

    python -m electra_tf.demo [--steps 300] [--batch 32]
"""

from __future__ import annotations

import argparse
import math
import time

import keras
import numpy as np

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)


def markov_corpus(vocab_size: int, num_sequences: int, length: int, seed: int = 0) -> np.ndarray:
    """[num_sequences, length] ids: [CLS] tokens... [SEP], ids >= 5 from a sparse Markov chain."""
    rng = np.random.default_rng(seed)
    successors = rng.integers(5, vocab_size, (vocab_size, 2))  # 2 likely next tokens each
    out = np.zeros((num_sequences, length), np.int64)
    out[:, 0], out[:, -1] = 2, 3  # [CLS], [SEP]
    token = rng.integers(5, vocab_size, num_sequences)
    for t in range(1, length - 1):
        out[:, t] = token
        pick = rng.integers(0, 2, num_sequences)
        jump = rng.random(num_sequences) < 0.05  # 5% noise: any token
        token = np.where(jump, rng.integers(5, vocab_size, num_sequences),
                         successors[token, pick])
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--log_every", type=int, default=50)
    a = p.parse_args(argv)

    import tensorflow as tf

    from electra_tf import losses, optimization
    from electra_tf.config import get_config
    from electra_tf.data import masking
    from electra_tf.models import build_pretrainer
    from electra_tf.training import LOSS_KEYS, PretrainStep

    vocab = 300
    cfg = get_config("tiny").replace(model={"vocab_size": vocab},
                                     pretrain={"max_seq_length": a.seq, "batch_size": a.batch,
                                               "train_steps": a.steps, "warmup_steps": 30})
    ids = markov_corpus(vocab, 4096, a.seq)
    raw = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)}
    pre = cfg.pretrain
    data = (tf.data.Dataset.from_tensor_slices(raw).repeat().batch(a.batch, drop_remainder=True)
            .enumerate()
            .map(lambda i, b: masking.mask_batch(
                {k: tf.cast(v, tf.int32) for k, v in b.items()}, masking.batch_seed(pre.seed, i),
                mask_prob=pre.mask_prob, num_predictions=pre.num_predictions, mask_id=4,
                special_ids=(2, 3, 4)))
            .prefetch(2))
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(pre.seed)  # reproducible initial weights
    model = build_pretrainer(cfg)
    opt = optimization.pretraining_optimizer(pre.learning_rate, pre.train_steps,
                                             pre.warmup_steps)
    step = PretrainStep(model, opt, pre, strategy)
    iterator = iter(data)
    expected = losses.expected_initial_loss(vocab, pre)
    print(f"electra-tf demo: tiny model ({cfg.model.num_layers} layers, hidden "
          f"{cfg.model.hidden_size}), synthetic Markov text, V={vocab}, B={a.batch}, L={a.seq}; "
          f"expected first loss ln(V) + 50 ln 2 = {expected:.2f}")
    start, done, summary = time.perf_counter(), 0, {}
    while done < a.steps:
        n = min(a.log_every, a.steps - done)
        sums = {k: v.numpy() for k, v in step.train(iterator, tf.constant(n)).items()}
        done += n
        summary = {k: float(sums[k]) / n for k in LOSS_KEYS}
        summary.update(losses.summarize_metrics(sums))
        rate = done * a.batch / (time.perf_counter() - start)
        print(f"step {done:5d}  loss {summary['loss']:7.3f}  mlm {summary['mlm_loss']:.3f}  "
              f"disc {summary['disc_loss']:.4f}  mlm_acc {summary['mlm_accuracy']:.3f}  "
              f"sampled_acc {summary['sampled_accuracy']:.3f}  "
              f"auc {summary['disc_auc']:.3f}  {rate:.1f} seq/s", flush=True)
    if not math.isfinite(summary["loss"]):
        raise SystemExit("demo: loss is not finite")
    return summary


if __name__ == "__main__":
    main()
