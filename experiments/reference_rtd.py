"""The same small ELECTRA pretraining run in transformers (PyTorch), as a reference for ours.

Same batches (our TFRecord pipeline and dynamic masking), the same model shape (the model of
experiments/pretraining_helps.py unless --config_json), the same objective (MLM + 50 x
replaced-token detection, Gumbel sampling from the generator, shared embeddings, tied MLM
output), AdamW with weight decay 0.01 (torch's, with bias correction), warmup 10% and linear
decay, clipping at global norm 1. Prints one JSON line every --log_every steps with the same
metrics as our progress line, to set beside `pretraining.run`'s TensorBoard values.

    .venv/bin/python experiments/reference_rtd.py --shards 'runs/helps/shards/pre*' \
        --vocab runs/helps/vocab.txt --steps 1500 --save_dir runs/helps/hf_1500
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

from electra_tf import losses
from electra_tf.config import ModelConfig
from electra_tf.convert_hf import hf_config
from electra_tf.data import pipeline
from electra_tf.tokenization import load_vocab

sys.path.insert(0, str(Path(__file__).parent))
from pretraining_helps import LENGTH, MODEL  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--shards", required=True)
    p.add_argument("--vocab", required=True)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--log_every", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save_dir", default="", help="write <dir>/{discriminator,generator} "
                   "(transformers format; convert_checkpoint.py --source=hf reads them)")
    a = p.parse_args()

    torch.manual_seed(a.seed)
    vocab = load_vocab(a.vocab)
    cfg = ModelConfig(**MODEL, vocab_size=vocab.size)
    gen = transformers.ElectraForMaskedLM(
        transformers.ElectraConfig(**hf_config(cfg, "generator")))
    disc = transformers.ElectraForPreTraining(
        transformers.ElectraConfig(**hf_config(cfg, "discriminator")))
    gen.electra.embeddings = disc.electra.embeddings  # one embeddings module (+ its LayerNorm)
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight  # tied output
    params = {id(q): q for m in (gen, disc) for q in m.parameters()}.values()
    no_decay = [q for q in params if q.ndim == 1]
    decay = [q for q in params if q.ndim > 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, eps=1e-6)
    warmup = a.steps // 10
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, s / max(1, warmup)) * max(0.0, 1 - s / a.steps))

    spec = pipeline.MaskingSpec(0.15, int((0.15 + 0.005) * LENGTH), vocab.mask_id,
                                vocab.never_masked_ids)
    batches = pipeline.pretraining_dataset(a.shards, a.batch, LENGTH, spec, seed=a.seed)
    sums = None
    gen.train()
    disc.train()
    for step, batch in enumerate(batches.take(a.steps).as_numpy_iterator(), start=1):
        t = {k: torch.tensor(v, dtype=torch.float32 if v.dtype == np.float32 else torch.long)
             for k, v in batch.items()}
        ids, mask, seg = t["input_ids"], t["input_mask"], t["segment_ids"]
        pos, lm_ids, w = t["masked_lm_positions"], t["masked_lm_ids"], t["masked_lm_weights"]
        logits_all = gen(input_ids=ids, attention_mask=mask, token_type_ids=seg).logits
        logits = torch.gather(logits_all, 1, pos[..., None].expand(-1, -1, logits_all.shape[-1]))
        mlm = (torch.nn.functional.cross_entropy(logits.transpose(1, 2), lm_ids,
                                                 reduction="none") * w).sum() / (w.sum() + 1e-6)
        with torch.no_grad():
            u = torch.rand_like(logits)
            sampled = (logits - torch.log(-torch.log(u + 1e-9) + 1e-9)).argmax(-1)  # [B, N]
            live = w > 0
            corrupted = ids.clone()
            rows = torch.arange(ids.shape[0])[:, None].expand_as(pos)
            corrupted[rows[live], pos[live]] = sampled[live]
            replaced = torch.zeros_like(ids)
            replaced[rows[live], pos[live]] = (sampled[live] != lm_ids[live]).long()
            replaced *= mask
        disc_logits = disc(input_ids=corrupted, attention_mask=mask, token_type_ids=seg).logits
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            disc_logits, replaced.float(), reduction="none")
        disc_loss = (bce * mask).sum() / (mask.sum() + 1e-6)
        loss = mlm + 50.0 * disc_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params), 1.0)
        opt.step()
        sched.step()

        part = losses.metric_sums(
            {"mlm_logits": logits.detach().numpy(), "sampled_ids": sampled.int().numpy(),
             "is_replaced": replaced.int().numpy(), "disc_logits": disc_logits.detach().numpy()},
            {k: batch[k] for k in ("masked_lm_ids", "masked_lm_weights", "input_mask")})
        part = {k: np.asarray(v) for k, v in part.items()}
        part.update(loss=loss.item(), mlm_loss=mlm.item(), disc_loss=disc_loss.item(),
                    disc_scores=disc_logits.detach().numpy(),
                    disc_labels=np.where(mask.numpy() == 1, replaced.int().numpy(), -1))
        sums = losses.accumulate(sums or {}, part)
        if step % a.log_every == 0:
            m = losses.summarize_metrics(sums)
            m.update({k: sums[k] / a.log_every for k in ("loss", "mlm_loss", "disc_loss")})
            print(json.dumps({"impl": f"transformers {transformers.__version__}", "step": step,
                              **{k: round(float(v), 4) for k, v in m.items()}}), flush=True)
            sums = None
    if a.save_dir:
        disc.save_pretrained(f"{a.save_dir}/discriminator")
        gen.save_pretrained(f"{a.save_dir}/generator")


if __name__ == "__main__":
    main()
