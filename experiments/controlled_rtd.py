"""Our pretraining step against transformers' ELECTRA from identical weights, step by step.

A controlled comparison: the same initial weights (ours copied into transformers' generator and
discriminator through the converters' name map, embeddings shared and the MLM output tied as in
ELECTRA), the same batches and masks (our TFRecord pipeline, read once), the same sampling uniforms
(one per masked slot from our stream for each step, handed to the PyTorch side, which inverts
its softmax's cumulative sum with them as ours does), dropout off in both (its masks cannot be
shared), and the same optimizer arithmetic (the authors' Adam: no bias correction, decoupled
weight decay 0.01 except LayerNorm and biases, epsilon 1e-6, clipping at global norm 1,
warmup x linear decay), written out in PyTorch. Ours runs through `training.PretrainStep`,
the step the CLI runs.

Any difference beyond float32 round-off is a bug on one side. Every step's losses are compared;
every --probe_every steps also the discriminator's hidden states on 500 sentiment sentences:
per layer, the spread across tokens (std of each unit, averaged) and of the [CLS] vector
across sentences, the share of the tokens' norm in their mean vector, and the exact AUC over
the window.

    .venv/bin/python experiments/controlled_rtd.py --data_dir runs/demo/data \
        --steps 1500 --out experiments/results/controlled_rtd.jsonl
(`runs/demo/data` is what `make demo` builds: vocab.txt and shards of 64 tokens.)
"""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import tensorflow as tf
import torch
import transformers
from exp_common import sentiment_spec

from electra_tf import convert, losses, optimization, rng, training
from electra_tf.config import get_config
from electra_tf.convert_hf import hf_config
from electra_tf.data import features, pipeline, tasks
from electra_tf.layers import attention_mask_adder
from electra_tf.models import build_pretrainer
from electra_tf.tokenization import WordPieceTokenizer, load_vocab

NO_DECAY = re.compile(optimization.NO_DECAY_PATTERN.replace("layer_norm|", "LayerNorm|"))


def config(vocab_size: int, length: int, steps: int, lr: float, batch: int):
    """The demo's tiny shape with dropout off."""
    return get_config("tiny").replace(
        model={"vocab_size": vocab_size, "hidden_dropout": 0.0, "attention_dropout": 0.0},
        pretrain={"max_seq_length": length, "batch_size": batch, "train_steps": steps,
                  "learning_rate": lr, "warmup_steps": max(1, steps // 10)})


def transformers_models(model, cfg):
    """transformers' generator and discriminator holding `model`'s current weights, with one
    shared embeddings module and the MLM output tied to its word table."""
    gen = transformers.ElectraForMaskedLM(transformers.ElectraConfig(
        **hf_config(cfg.model, "generator")))
    disc = transformers.ElectraForPreTraining(transformers.ElectraConfig(
        **hf_config(cfg.model, "discriminator")))
    for net, variables in ((disc, convert.discriminator_variables(model.discriminator)),
                           (gen, convert.generator_variables(model.generator))):
        state = {k: torch.from_numpy(np.ascontiguousarray(v))
                 for k, v in convert.to_hf_state(variables).items()}
        if net is gen:
            state["generator_lm_head.weight"] = state["electra.embeddings.word_embeddings.weight"]
        missing, unexpected = net.load_state_dict(state, strict=False)
        assert not unexpected and all("position_ids" in k or "token_type_ids" in k
                                      for k in missing), (missing, unexpected)
    gen.electra.embeddings = disc.electra.embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    gen.eval(), disc.eval()  # dropout is 0 anyway; eval() keeps it that way
    return gen, disc


class AuthorsAdam:
    """The authors' AdamWeightDecayOptimizer in PyTorch, with global-norm clipping."""

    def __init__(self, named_params, lr_fn, weight_decay=0.01, eps=1e-6, clip=1.0):
        self.params = named_params  # [(name, parameter)], each parameter once
        self.state = {id(p): (torch.zeros_like(p), torch.zeros_like(p)) for _, p in named_params}
        self.lr_fn, self.wd, self.eps, self.clip, self.step_count = lr_fn, weight_decay, eps, \
            clip, 0

    @torch.no_grad()
    def step(self) -> float:
        grads = [p.grad for _, p in self.params]
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).float()
        scale = self.clip / torch.maximum(norm, torch.tensor(self.clip))
        lr = self.lr_fn(self.step_count)
        for (name, p), g in zip(self.params, grads):
            g = g * scale
            m, v = self.state[id(p)]
            m.mul_(0.9).add_(g, alpha=0.1)
            v.mul_(0.999).addcmul_(g, g, value=0.001)
            update = m / (v.sqrt() + self.eps)
            if not NO_DECAY.search(name):
                update = update + self.wd * p
            p.sub_(lr * update)
        self.step_count += 1
        return float(norm)


def torch_step(gen, disc, opt, batch, uniform, length):
    """One ELECTRA update in PyTorch on our masked batch and our sampling uniforms [B, N]."""
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}
    ids, mask, seg = t["input_ids"].long(), t["input_mask"].long(), t["segment_ids"].long()
    pos, mids, w = t["masked_lm_positions"].long(), t["masked_lm_ids"].long(), \
        t["masked_lm_weights"].float()
    for net in (gen, disc):
        net.zero_grad(set_to_none=True)
    logits = gen(input_ids=ids, attention_mask=mask, token_type_ids=seg).logits  # [B, L, V]
    logits = torch.gather(logits, 1, pos[:, :, None].expand(-1, -1, logits.shape[-1]))
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), mids, reduction="none")
    mlm = (ce * w).sum() / (w.sum() + 1e-6)
    # inverse CDF of the softmax, in float64 (ours sums float32 in two levels: the same word
    # unless a uniform falls within round-off of a boundary)
    cum = torch.cumsum(torch.softmax(logits.detach().double(), -1), -1)  # [B, N, V]
    target = torch.from_numpy(uniform).double()[..., None] * cum[..., -1:]
    sampled = torch.searchsorted(cum, target, right=True)[..., 0].clamp(max=cum.shape[-1] - 1)
    live = w > 0
    original = ids.clone()
    for b in range(ids.shape[0]):  # restore the originals, then place the samples
        original[b, pos[b][live[b]]] = mids[b][live[b]]
    corrupted = original.clone()
    replaced = torch.zeros_like(ids)
    for b in range(ids.shape[0]):
        corrupted[b, pos[b][live[b]]] = sampled[b][live[b]]
        replaced[b, pos[b][live[b]]] = (sampled[b][live[b]] != mids[b][live[b]]).long()
    replaced = replaced * mask
    disc_logits = disc(input_ids=corrupted, attention_mask=mask, token_type_ids=seg).logits
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        disc_logits, replaced.float(), reduction="none")
    disc_loss = (bce * mask).sum() / (mask.sum() + 1e-6)
    loss = mlm + 50.0 * disc_loss
    loss.backward()
    opt.step()
    return {"loss": loss.item(), "mlm_loss": mlm.item(), "disc_loss": disc_loss.item(),
            "disc_scores": disc_logits.detach().numpy(),
            "disc_labels": np.where(mask.numpy() == 1, replaced.numpy(), -1)}


def hidden_stats(layers: list[np.ndarray], input_mask: np.ndarray) -> list[list[float]]:
    """Per layer (embeddings first): [token spread, [CLS] spread, share of the mean vector]."""
    keep = input_mask.astype(bool)
    out = []
    for h in layers:
        tokens = h[keep]
        mean_share = np.linalg.norm(tokens.mean(0)) / np.linalg.norm(tokens, axis=1).mean()
        out.append([round(float(tokens.std(0).mean()), 4), round(float(h[:, 0].std(0).mean()), 4),
                    round(float(mean_share), 4)])
    return out


def our_layers(model, f) -> list[np.ndarray]:
    enc = model.discriminator.encoder
    x = enc.embeddings(f["input_ids"], f["segment_ids"], training=False)
    x = enc.embeddings_project(x) if enc.embeddings_project is not None else x
    adder, out = attention_mask_adder(f["input_mask"]), [x.numpy()]
    for block in enc.blocks:
        x = block(x, adder, training=False)
        out.append(x.numpy())
    return out


@torch.no_grad()
def their_layers(disc, f) -> list[np.ndarray]:
    t = {k: torch.from_numpy(np.asarray(f[k])).long() for k in ("input_ids", "input_mask",
                                                                  "segment_ids")}
    out = disc(input_ids=t["input_ids"], attention_mask=t["input_mask"],
               token_type_ids=t["segment_ids"], output_hidden_states=True)
    return [h.numpy() for h in out.hidden_states]


def probe_set(vocab, data_dir: str, length: int) -> dict[str, np.ndarray]:
    spec = sentiment_spec()
    examples = tasks.read_split(spec, data_dir, "dev")["dev"]
    enc = features.encode_sentences(examples[:500], WordPieceTokenizer(vocab), length,
                                    "classification", ("neg", "pos"))
    return {k: enc.features[k] for k in ("input_ids", "input_mask", "segment_ids")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="vocab.txt and pretrain_data* shards")
    p.add_argument("--probe_dir", default="demo_data/sentiment")
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--probe_every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON lines: one per step, probes included")
    a = p.parse_args()
    torch.set_num_threads(2)
    vocab = load_vocab(f"{a.data_dir}/vocab.txt")
    cfg = config(vocab.size, a.max_seq_length, a.steps, a.lr, a.batch)
    spec = pipeline.MaskingSpec.from_config(cfg, vocab)
    data = pipeline.pretraining_dataset(f"{a.data_dir}/pretrain_data*", a.batch,
                                        a.max_seq_length, spec, seed=a.seed, deterministic=True)
    batches = [{k: v.numpy() for k, v in b.items()} for b in data.take(a.steps)]
    probe = probe_set(vocab, a.probe_dir, a.max_seq_length)

    tf.keras.utils.set_random_seed(a.seed)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = build_pretrainer(cfg)
        opt = optimization.pretraining_optimizer(a.lr, a.steps, cfg.pretrain.warmup_steps)
        step_fn = training.PretrainStep(model, opt, cfg.pretrain, strategy)
    stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    ours_input = iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(stacked)))
    gen, disc = transformers_models(model, cfg)
    named = {}
    for prefix, net in (("disc", disc), ("gen", gen)):
        for name, q in net.named_parameters(remove_duplicate=False):
            named.setdefault(id(q), (f"{prefix}.{name}", q))
    schedule = optimization.WarmupLinearDecay(a.lr, a.steps, cfg.pretrain.warmup_steps)
    theirs_opt = AuthorsAdam(list(named.values()), lambda s: float(schedule(s)))
    n = cfg.pretrain.num_predictions
    window: dict[str, dict] = {"ours": {}, "theirs": {}}
    with open(a.out, "w") as out:
        for step, batch in enumerate(batches):
            seed = training.sampling_seed(cfg.pretrain.seed, step, 0, a.batch)
            uniform = rng.uniform(tf.constant([a.batch, n]), rng.stream(seed, "sampling")).numpy()
            ours = {k: v.numpy() for k, v in step_fn.train(ours_input, tf.constant(1)).items()}
            theirs = torch_step(gen, disc, theirs_opt, batch, uniform, a.max_seq_length)
            row = {"step": step + 1, **{f"{k}_ours": round(float(ours[k]), 6) for k in
                                        training.LOSS_KEYS},
                   **{f"{k}_theirs": round(theirs[k], 6) for k in training.LOSS_KEYS}}
            for side, result in (("ours", ours), ("theirs", theirs)):
                window[side] = losses.accumulate(window[side], {
                    k: result[k] for k in losses.SAMPLE_KEYS})
            if (step + 1) % a.probe_every == 0:
                for side in ("ours", "theirs"):
                    row[f"auc_{side}"] = round(losses.exact_auc(
                        *(np.concatenate(window[side][k]) for k in losses.SAMPLE_KEYS)), 4)
                window = {"ours": {}, "theirs": {}}
                row["hidden_ours"] = hidden_stats(our_layers(model, probe), probe["input_mask"])
                row["hidden_theirs"] = hidden_stats(their_layers(disc, probe),
                                                    probe["input_mask"])
                table = model.embeddings.word_embeddings.numpy()
                row["max_abs_weight_diff_word_embeddings"] = float(np.abs(
                    table - disc.electra.embeddings.word_embeddings.weight.detach().numpy()
                ).max())
                print(json.dumps({k: v for k, v in row.items() if not k.startswith("hidden")}),
                      flush=True)
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
