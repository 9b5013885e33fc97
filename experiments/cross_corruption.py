"""Discriminators of several pretraining runs scored on the *same* corrupted text.

A run's own eval AUC is measured on its own generator's replacements, and a better generator
makes them harder: two runs' AUCs do not compare. Here every discriminator reads the same
corruptions of the same held-out rows: those sampled by each run's generator in turn, and
uniformly random replacements at the masked positions. Prints a table of exact AUCs (and the
loss over the base rate's entropy); writes them as JSON.

    .venv/bin/python experiments/cross_corruption.py --run authors=runs/pre_authors \
        --run packed=runs/pre_packed --eval_files 'runs/data_authors/eval_data*' \
        --vocab_file runs/data_authors/vocab.txt --out experiments/results/packing_cross.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import tensorflow as tf

from electra_tf import losses, rng
from electra_tf.checkpoints import load_pretrainer
from electra_tf.data import pipeline
from electra_tf.machine import describe
from electra_tf.tokenization import load_vocab


def uniform_corruption(batch, vocab_size: int, seed: int):
    """Every masked slot replaced by a uniformly drawn token: (corrupted_ids, is_replaced)."""
    ids = batch["input_ids"].numpy()
    positions, weights = batch["masked_lm_positions"].numpy(), batch["masked_lm_weights"].numpy()
    draws = np.random.default_rng(seed).integers(5, vocab_size, positions.shape)
    corrupted, replaced = ids.copy(), np.zeros_like(ids)
    for b, (pos, w, d) in enumerate(zip(positions, weights, draws)):
        live = w > 0
        replaced[b, pos[live]] = (d[live] != ids[b, pos[live]]).astype(ids.dtype)
        corrupted[b, pos[live]] = d[live]
    return corrupted, replaced * batch["input_mask"].numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, help="name=model_dir")
    p.add_argument("--eval_files", required=True)
    p.add_argument("--vocab_file", required=True)
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    runs = dict(spec.split("=", 1) for spec in a.run)
    models = {name: load_pretrainer(path) for name, path in runs.items()}
    first = next(iter(models.values())).config
    vocab = load_vocab(a.vocab_file)
    spec = pipeline.MaskingSpec.from_config(first, vocab)
    data = pipeline.pretraining_dataset(a.eval_files, first.pretrain.batch_size,
                                        first.pretrain.max_seq_length, spec, seed=a.seed,
                                        training=False).take(a.batches)
    sources = [*models, "uniform"]
    scores = {(d, s): ([], []) for d in models for s in sources}
    for i, batch in enumerate(data):
        seed = rng.stream(tf.constant([a.seed, i], tf.int32), "sampling")
        for source in sources:
            if source == "uniform":
                corrupted, replaced = uniform_corruption(batch, vocab.size, a.seed + i)
            else:
                out = models[source](batch, training=False, seed=seed)
                corrupted, replaced = out["corrupted_ids"].numpy(), out["is_replaced"].numpy()
            labels = np.where(batch["input_mask"].numpy() == 1, replaced, -1)
            for name, model in models.items():
                logits = model.discriminator(corrupted, batch["input_mask"],
                                             batch["segment_ids"], training=False)
                scores[(name, source)][0].append(logits["disc_logits"].numpy())
                scores[(name, source)][1].append(labels)
    table = {}
    for (name, source), (logit_list, label_list) in scores.items():
        logits, labels = np.concatenate(logit_list), np.concatenate(label_list)
        keep = labels >= 0
        rate = labels[keep].mean()
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels[keep].astype(np.float32),
                                                     logits[keep]).numpy().mean()
        table.setdefault(name, {})[source] = {
            "auc": round(losses.exact_auc(logits, labels), 4),
            "loss_over_base_rate": round(float(ce / losses.binary_entropy(rate)), 4),
            "replaced_fraction": round(float(rate), 4)}
    with open(a.out, "w") as f:
        json.dump({**describe(), "arguments": vars(a), "discriminator_by_corruption": table},
                  f, indent=1)
    print("| discriminator | " + " | ".join(f"{s}'s corruptions" for s in sources) + " |")
    print("|---|" + "---|" * len(sources))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(
            f"AUC {row[s]['auc']} (loss {row[s]['loss_over_base_rate']} of base)"
            for s in sources) + " |")


if __name__ == "__main__":
    main()
