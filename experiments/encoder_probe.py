"""How usable are a pretrained encoder's outputs, before any fine-tuning? Two cheap numbers.

- spread: the standard deviation of each hidden unit of the encoder's output over the tokens at
  positions 1-9 of 1,500 sentiment sentences, averaged over units. A discriminator collapsed to
  the base rate squeezes its outputs together (low spread).
- probe: accuracy of a logistic regression on the mean-pooled outputs of 1,000 of those
  sentences, scored on the other 500 (also for [CLS] alone and for the mean of the embeddings).

Prints one line for the checkpoint and one per seed for the same shape with random weights.

    .venv/bin/python experiments/encoder_probe.py --init_checkpoint runs/helps/q1e-4 \
        --vocab_file runs/helps/w1/vocab.txt --max_seq_length 48
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
from exp_common import sentiment_spec
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from electra_tf import tokenization
from electra_tf.checkpoints import initialize, resolve_checkpoint
from electra_tf.config import ElectraConfig
from electra_tf.data import features, tasks
from electra_tf.heads import build_task_model


def probe(model, enc) -> dict[str, float]:
    f = enc.features
    seq = model.discriminator.encoder(f["input_ids"], f["input_mask"], f["segment_ids"],
                                      training=False).numpy()  # [N, L, H]
    mask = f["input_mask"][..., None]  # [N, L, 1]
    emb = model.discriminator.encoder.embeddings.word_embeddings.numpy()[f["input_ids"]]
    pooled = {"cls": seq[:, 0], "mean": (seq * mask).sum(1) / mask.sum(1),
              "embedding_mean": (emb * mask).sum(1) / mask.sum(1)}
    out = {"spread": float(seq[:, 1:10].reshape(-1, seq.shape[-1]).std(0).mean())}
    y = f["label_ids"]
    for name, x in pooled.items():
        out[f"probe_{name}"] = linear_probe(x, y)
    return out


def linear_probe(x: np.ndarray, y: np.ndarray, train: int = 1000) -> float:
    """[N, D] features, [N] labels -> accuracy on rows train: of a logistic regression fitted on
    the first `train` rows. Features are standardized first: unscaled ones of ~0.01 (embedding
    means) leave the default L2 penalty nothing to fit, and the probe would read the majority
    class whatever they hold."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    clf.fit(x[:train], y[:train])
    return float(clf.score(x[train:], y[train:]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init_checkpoint", required=True, help="A pretraining run's directory.")
    p.add_argument("--vocab_file", required=True)
    p.add_argument("--max_seq_length", type=int, default=48)
    p.add_argument("--data_dir", default="../shared/data/tasks/sentiment")
    p.add_argument("--random_seeds", type=int, default=3, help="Random-weight references.")
    args = p.parse_args()
    prefix = resolve_checkpoint(args.init_checkpoint)
    with open(f"{prefix.rsplit('/', 1)[0]}/config.json") as f:
        cfg = ElectraConfig.from_json(f.read()).model
    spec = sentiment_spec()
    examples = tasks.read_split(spec, args.data_dir, "train")["train"]
    pick = np.random.default_rng(0).permutation(len(examples))[:1500]
    tokenizer = tokenization.WordPieceTokenizer(tokenization.load_vocab(args.vocab_file))
    enc = features.encode_sentences([examples[i] for i in pick], tokenizer, args.max_seq_length,
                                    "classification", ("neg", "pos"))
    arms = [("pretrained", prefix)] + [(f"random (seed {s})", s) for s in range(args.random_seeds)]
    for name, init in arms:
        if isinstance(init, int):
            keras.utils.set_random_seed(init)
        model = build_task_model(cfg, "classification", 2)
        if isinstance(init, str):
            initialize(model, init)
        print(name, " ".join(f"{k} {v:.3f}" for k, v in probe(model, enc).items()), flush=True)


if __name__ == "__main__":
    main()
