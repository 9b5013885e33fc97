"""Fine-tuning with transformers' ELECTRA, to check ours from the other side.

Fine-tunes `ElectraForSequenceClassification` (transformers' head: [CLS] -> dropout -> dense ->
GELU -> dropout -> output, as ours) on label<TAB>text files with PyTorch's AdamW
(bias-corrected, weight decay 0.01 except LayerNorm and biases, linear warmup and decay), from a
transformers discriminator directory (e.g. one of ours through `convert_checkpoint.py
--source=ours --target=hf`) or from transformers' random initialization of the same shape.
Inputs are our tokenizer's, so both sides read the same ids. Prints and writes dev accuracy per
seed.

    .venv/bin/python experiments/hf_finetune.py --task_dir runs/lc_en/data_1000_0 \
        --vocab_file runs/demo/data/vocab.txt --init runs/demo_hf/discriminator --seed 0 \
        --out runs/hf_ft/demo_1000_0.json
    # random weights: --config runs/demo_hf/discriminator/config.json instead of --init
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np
import torch
import transformers
from exp_common import sentiment_spec
from hf_pipeline import AdamW

from electra_tf.data import features, tasks
from electra_tf.tokenization import WordPieceTokenizer, load_vocab

LABELS = ("neg", "pos")


def encode(task_dir: str, split: str, vocab, length: int) -> dict[str, torch.Tensor]:
    spec = sentiment_spec()
    examples = tasks.read_split(spec, task_dir, split)[split]
    enc = features.encode_sentences(examples, WordPieceTokenizer(vocab), length,
                                    "classification", LABELS)
    return {k: torch.from_numpy(v.astype(np.int64)) for k, v in enc.features.items()}


def model_from(a) -> transformers.ElectraForSequenceClassification:
    if a.init:
        return transformers.ElectraForSequenceClassification.from_pretrained(
            a.init, num_labels=len(LABELS))
    config = transformers.ElectraConfig.from_json_file(a.config)
    config.num_labels = len(LABELS)
    return transformers.ElectraForSequenceClassification(config)


@torch.no_grad()
def accuracy(model, data: dict[str, torch.Tensor]) -> float:
    model.eval()
    logits = model(input_ids=data["input_ids"], attention_mask=data["input_mask"],
                   token_type_ids=data["segment_ids"]).logits
    model.train()
    return float((logits.argmax(-1) == data["label_ids"]).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task_dir", required=True)
    p.add_argument("--vocab_file", required=True)
    p.add_argument("--init", help="a transformers discriminator directory")
    p.add_argument("--config", help="random weights: a transformers config.json")
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=3e-4)
    p.add_argument("--min_steps", type=int, default=200)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(a.seed)
    vocab = load_vocab(a.vocab_file)
    train = encode(a.task_dir, "train", vocab, a.max_seq_length)
    dev = encode(a.task_dir, "dev", vocab, a.max_seq_length)
    model = model_from(a)
    model.train()
    n = len(train["label_ids"])
    steps = max(a.min_steps, math.ceil(a.epochs * n / a.batch_size))
    warmup = max(1, steps // 10)
    opt = AdamW(list(model.named_parameters()), a.learning_rate, steps, warmup)
    gen = torch.Generator().manual_seed(a.seed)
    order, losses = torch.randperm(n, generator=gen), []
    for step in range(steps):
        start = (step * a.batch_size) % n
        if start + a.batch_size > n:
            order = torch.randperm(n, generator=gen)
            start = 0
        idx = order[start:start + a.batch_size]
        out = model(input_ids=train["input_ids"][idx], attention_mask=train["input_mask"][idx],
                    token_type_ids=train["segment_ids"][idx], labels=train["label_ids"][idx])
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    result = {"args": vars(a), "steps": steps, "dev_accuracy": accuracy(model, dev),
              "train_loss_by_50": [round(float(np.mean(losses[i:i + 50])), 4)
                                   for i in range(0, steps, 50)]}
    print(json.dumps(result), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
