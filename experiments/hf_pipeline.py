"""Pretraining with transformers' ELECTRA on its own terms, for a reference checkpoint.

`controlled_rtd.py` checks our step against transformers' from *our* initial weights with *the
authors'* Adam; this script leaves both to transformers and PyTorch: transformers' own
initialization (normal 0.02 for every dense layer and table), dropout on, and PyTorch's AdamW
(bias-corrected, decoupled weight decay 0.01 except LayerNorm and biases, epsilon 1e-6,
clipping at global norm 1, linear warmup and decay). Batches and masks are our pipeline's (the
same masking as the demo's run), the Gumbel noise is PyTorch's. The discriminator is saved as a
transformers directory that `convert_checkpoint.py --source=hf` turns into one of ours, so
fine-tuning it (e.g. `label_curve.py`) is the same code as for our own runs.

    .venv/bin/python experiments/hf_pipeline.py --data_dir runs/demo/data --steps 1500 \
        --output_dir runs/hf_pretrain
    python convert_checkpoint.py --source=hf --input=runs/hf_pretrain/discriminator \
        --generator_input=runs/hf_pretrain/generator --output_dir=runs/hf_pretrain_ours
"""

from __future__ import annotations

import argparse
import json
import os
import re

import numpy as np
import torch
import transformers
from controlled_rtd import torch_step

from electra_tf import losses
from electra_tf.config import get_config
from electra_tf.convert_hf import hf_config
from electra_tf.data import pipeline
from electra_tf.tokenization import load_vocab

NO_DECAY = re.compile(r"LayerNorm|bias")


def fresh_models(cfg):
    """transformers' generator and discriminator as transformers initializes them, sharing one
    embeddings module, the generator's MLM output tied to the shared word table."""
    gen = transformers.ElectraForMaskedLM(transformers.ElectraConfig(
        **hf_config(cfg.model, "generator")))
    disc = transformers.ElectraForPreTraining(transformers.ElectraConfig(
        **hf_config(cfg.model, "discriminator")))
    gen.electra.embeddings = disc.electra.embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    return gen, disc


class AdamW:
    """PyTorch's AdamW over (name, parameter) pairs, weight decay 0.01 except LayerNorm and
    biases, epsilon 1e-6, linear warmup then linear decay to 0; `step` clips the gradients at
    global norm 1, updates, advances the schedule and clears the gradients."""

    def __init__(self, named: list, lr: float, steps: int, warmup: int):
        self.params = [p for _, p in named]
        self.opt = torch.optim.AdamW(
            [{"params": [p for n, p in named if not NO_DECAY.search(n)], "weight_decay": 0.01},
             {"params": [p for n, p in named if NO_DECAY.search(n)], "weight_decay": 0.0}],
            lr=lr, betas=(0.9, 0.999), eps=1e-6)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))

    def step(self) -> float:
        norm = torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.schedule.step()
        self.opt.zero_grad()
        return float(norm)


def optimizer(gen, disc, lr: float, steps: int, warmup: int) -> AdamW:
    """AdamW over each parameter of both networks once (the shared embeddings too)."""
    named = {}
    for prefix, net in (("disc", disc), ("gen", gen)):
        for name, p in net.named_parameters(remove_duplicate=False):
            named.setdefault(id(p), (f"{prefix}.{name}", p))
    return AdamW(list(named.values()), lr, steps, warmup)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="vocab.txt and pretrain_data* shards")
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--log_every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output_dir", required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(a.seed)
    vocab = load_vocab(f"{a.data_dir}/vocab.txt")
    cfg = get_config("tiny").replace(model={"vocab_size": vocab.size},
                                     pretrain={"max_seq_length": a.max_seq_length})
    spec = pipeline.MaskingSpec.from_config(cfg, vocab)
    data = pipeline.pretraining_dataset(f"{a.data_dir}/pretrain_data*", a.batch,
                                        a.max_seq_length, spec, seed=a.seed)
    gen, disc = fresh_models(cfg)
    gen.train(), disc.train()
    opt = optimizer(gen, disc, a.lr, a.steps, a.warmup)
    n = cfg.pretrain.num_predictions
    os.makedirs(a.output_dir, exist_ok=True)
    window, log = {}, []
    for step, batch in enumerate(data.take(a.steps)):
        batch = {k: v.numpy() for k, v in batch.items()}
        uniform = torch.rand(a.batch, n, vocab.size).numpy()
        out = torch_step(gen, disc, opt, batch, uniform, a.max_seq_length)
        window = losses.accumulate(window, {k: out[k] for k in losses.SAMPLE_KEYS})
        if (step + 1) % a.log_every == 0:
            row = {"step": step + 1, **{k: round(out[k], 4) for k in
                                        ("loss", "mlm_loss", "disc_loss")},
                   "auc": round(losses.exact_auc(*(np.concatenate(window[k]) for k in
                                                   losses.SAMPLE_KEYS)), 4)}
            window = {}
            log.append(row)
            print(json.dumps(row), flush=True)
    disc.save_pretrained(f"{a.output_dir}/discriminator")
    gen.save_pretrained(f"{a.output_dir}/generator")
    with open(f"{a.output_dir}/log.json", "w") as f:
        json.dump({"args": vars(a), "log": log}, f, indent=1)


if __name__ == "__main__":
    main()
