"""Did a fine-tuning run that ended at the majority class collapse its encoder?

For each fine-tuned seed given: the spread of the encoder's outputs over 400 training sentences
of its task (standard deviation across sentences, averaged over hidden units: of the [CLS]
vector, and of the tokens at positions 1-9), and, against the checkpoint it started from, the
discriminator variables that moved most (|after - before| / |before|). Prints one JSON line
per run; with --every_checkpoint, one per checkpoint kept in the seed's directory (a run saved
with, e.g., `--save_every=10 --keep_checkpoints=30`), to see when a collapse happens.

    .venv/bin/python experiments/collapse_probe.py --init_checkpoint runs/demo/pretrain \
        --vocab_file runs/demo/data/vocab.txt --run runs/lc_en_600/demo_1000_1:1 \
        --run runs/lc_en_600/demo_1000_0:0
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import tensorflow as tf
from exp_common import sentiment_spec

from electra_tf import tokenization
from electra_tf.checkpoints import initialize
from electra_tf.data import features, tasks
from electra_tf.export import load_finetuned
from electra_tf.heads import build_task_model


def spread(model, enc) -> dict[str, float]:
    f = enc.features
    seq = model.discriminator.encoder(f["input_ids"], f["input_mask"], f["segment_ids"],
                                      training=False).numpy()  # [N, L, H]
    return {"cls_spread": float(seq[:, 0].std(0).mean()),
            "token_spread": float(seq[:, 1:10].reshape(-1, seq.shape[-1]).std(0).mean())}


def starting_weights(model, init_checkpoint: str) -> dict[str, np.ndarray]:
    """The checkpoint's values of the discriminator's variables, by variable path (the task
    head starts from its own random draw, not from the checkpoint: it is left out)."""
    start = build_task_model(model.model_config, "classification", 2)
    initialize(start, init_checkpoint)
    return {v.path: v.numpy() for v in start.discriminator.weights}


def moved(model, before: dict[str, np.ndarray], top: int) -> list[tuple[str, float]]:
    change = [(v.path, float(np.linalg.norm(v.numpy() - before[v.path])
                             / np.linalg.norm(before[v.path])))
              for v in model.weights if v.path in before and np.linalg.norm(before[v.path])]
    return sorted(change, key=lambda c: -c[1])[:top]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init_checkpoint", required=True)
    p.add_argument("--vocab_file", required=True)
    p.add_argument("--run", action="append", required=True,
                   help="<run_finetuning.py output dir>:<seed> (repeat the flag)")
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--top", type=int, default=6)
    p.add_argument("--every_checkpoint", action="store_true")
    a = p.parse_args()
    tokenizer = tokenization.WordPieceTokenizer(tokenization.load_vocab(a.vocab_file))
    before = None  # the init checkpoint's weights, read once
    for run in a.run:
        directory, seed = run.rsplit(":", 1)
        with open(f"{directory}/finetune_config.json") as f:
            data_dir = json.load(f)["data_dir"]
        examples = tasks.read_split(sentiment_spec(), data_dir, "train")["train"]
        pick = np.random.default_rng(0).permutation(len(examples))[:400]
        enc = features.encode_sentences([examples[i] for i in pick], tokenizer,
                                        a.max_seq_length, "classification", ("neg", "pos"))
        model, _ = load_finetuned(directory, int(seed))
        before = before or starting_weights(model, a.init_checkpoint)
        with open(f"{directory}/results.json") as f:
            accuracy = json.load(f)["median"]["accuracy"]
        prefixes = [tf.train.latest_checkpoint(f"{directory}/seed_{seed}")]
        if a.every_checkpoint:
            prefixes = tf.train.get_checkpoint_state(
                f"{directory}/seed_{seed}").all_model_checkpoint_paths
        for prefix in prefixes:
            tf.train.Checkpoint(model=model).read(prefix).expect_partial()
            print(json.dumps({"run": run, "checkpoint": prefix.rsplit("/", 1)[-1],
                              "dev_accuracy": accuracy, **spread(model, enc),
                              "moved_most": moved(model, before, a.top)}), flush=True)


if __name__ == "__main__":
    main()
