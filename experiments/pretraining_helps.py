"""Does a briefly pretrained tiny model fine-tune better than the same model from random weights?

Corpus: ../shared/data/corpus fortune.txt + the first 4 MB of gcide.txt; a learned 4,096-word
vocabulary; sequences of 48. Model: 2 layers, hidden 64 (generator 16). Pretraining: our
`pretraining.run` for --pretrain_steps at --pretrain_lr (warmup 10%), batch 32. Fine-tuning:
the sentiment task in ../shared/data/tasks/sentiment through the generic TSV path, lr 3e-4,
3 epochs, no layer-wise decay, 3 seeds per arm; prints the median dev accuracy of each arm as
one JSON line.

    .venv/bin/python experiments/pretraining_helps.py --work_dir runs/helps --pretrain_steps 6000
`ELECTRA_EXPERIMENTS=1 pytest tests/test_finetuning.py -k pretraining_helps` runs it at 1,500
steps and asserts that pretraining helps (a strict xfail while it does not).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from exp_common import build_shards, sentiment_spec

from electra_tf import pretraining, tokenization
from electra_tf.config import get_config
from electra_tf.finetuning import FinetuneConfig, run

LENGTH = 48
MODEL = dict(embedding_size=64, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=256,
             generator_fraction=0.25, max_position_embeddings=64)


def build_data(shared: Path, work: Path) -> tokenization.Vocab:
    """Corpus slice -> learned vocabulary -> shards in `work` (reused when present)."""
    text = work / "corpus.txt"
    if not text.exists():
        corpus = shared / "data" / "corpus"
        fortune = (corpus / "fortune.txt").read_text(encoding="utf-8")
        gcide = (corpus / "gcide.txt").read_text(encoding="utf-8")[:4_000_000]
        text.write_text(fortune + gcide[:gcide.rfind("\n\n")] + "\n")
    return build_shards(text, work, 4096, LENGTH, num_shards=2)


def compare(shared: Path, work: Path, pretrain_steps: int = 1500, pretrain_lr: float = 5e-4,
            finetune_lr: float = 3e-4, epochs: float = 3.0, layerwise_decay: float = 1.0,
            seeds: int = 3, init_checkpoint: str = "") -> dict[str, float]:
    """Median dev accuracy over `seeds` of {'pretrained': ..., 'random': ...}.

    With `init_checkpoint` (e.g. experiments/reference_rtd.py's model, converted), the
    pretrained arm starts from it instead of our own pretraining."""
    work.mkdir(parents=True, exist_ok=True)
    vocab = build_data(shared, work)
    cfg = get_config("tiny").replace(model=dict(MODEL, vocab_size=vocab.size), pretrain=dict(
        max_seq_length=LENGTH, batch_size=32, train_steps=pretrain_steps,
        learning_rate=pretrain_lr, warmup_steps=pretrain_steps // 10))
    pretrained = work / f"pretrained_{pretrain_steps}_{pretrain_lr}"
    if init_checkpoint:
        pretrained = Path(init_checkpoint)
    else:
        pretraining.run(cfg, pretraining.RunOptions(  # resumes (or returns) when already done
            model_dir=str(pretrained), train_files=str(work / "shards" / "pre*"),
            vocab_file=vocab.path, steps_per_loop=100,
            log_every=max(100, pretrain_steps // 10), save_every=pretrain_steps))
    spec = sentiment_spec()
    medians = {}
    for arm, init in (("pretrained", str(pretrained)), ("random", "")):
        source = (pretrained.name if init_checkpoint else pretrain_steps) if init else 0
        name = f"{arm}_{source}_{finetune_lr}_{epochs}_{layerwise_decay}"
        ft = FinetuneConfig(task=spec, data_dir=str(shared / "data" / "tasks" / "sentiment"),
                            vocab_file=vocab.path, output_dir=str(work / name), model=cfg.model,
                            init_checkpoint=init, max_seq_length=LENGTH, batch_size=32,
                            eval_batch_size=256, learning_rate=finetune_lr, epochs=epochs,
                            layerwise_decay=layerwise_decay, num_seeds=seeds,
                            embedding_directions_removed=1 if init else 0,
                            steps_per_loop=100, log_every=1000, save_every=100_000)
        medians[arm] = run(ft)["median"]["accuracy"]
    return medians


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--shared_dir", default="../shared")
    p.add_argument("--work_dir", required=True)
    p.add_argument("--pretrain_steps", type=int, default=1500)
    p.add_argument("--pretrain_lr", type=float, default=5e-4)
    p.add_argument("--finetune_lr", type=float, default=3e-4)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--layerwise_decay", type=float, default=1.0,
                   help="1.0: none (2 layers; the recipe's 0.8 is for 12)")
    p.add_argument("--init_checkpoint", default="",
                   help="fine-tune this model (our format) instead of pretraining one")
    a = p.parse_args()
    medians = compare(Path(a.shared_dir), Path(a.work_dir), a.pretrain_steps, a.pretrain_lr,
                      a.finetune_lr, a.epochs, a.layerwise_decay,
                      init_checkpoint=a.init_checkpoint)
    print(json.dumps({**vars(a), "median_dev_accuracy": medians}))


if __name__ == "__main__":
    main()
