"""Do pretrained weights reach each fine-tuning family's bar in fewer steps than random weights?

    python experiments/steps_to_bar.py --init_checkpoint=converted/minilm \
        --vocab_file=converted/minilm/vocab.txt --work_dir=runs/steps_to_bar \
        --intensity_dir=data/intensity   # experiments/build_intensity_task.py

Families: the rule-made tasks of the learning tests (tests/rule_tasks.py: ner, squadv1, squad
(2.0), sts, mnli, mrpc, qqp) with their bars (rule_tasks.BARS), in their official file
formats, tokenized with the checkpoint's vocabulary. Arms: the checkpoint (our format: a
converted or pretraining checkpoint with its config.json beside it) and the same shape from
random weights. Each arm is fine-tuned on each task at each step budget (--budgets, increasing;
a budget is a whole run: warmup and decay over it), over --num_seeds seeds; its steps-to-bar is
the smallest budget whose median dev metrics reach the bar (the sweep stops there). Random
weights run only up to the checkpoint's steps-to-bar, which is enough to tell which needs fewer
(--full_random_sweep: up to their own); the report then reads "> <largest budget run>".
Real task (--intensity_dir): the generic TSV path on 5-class sentiment intensity; each arm of
--intensity_arms fine-tuned --intensity_epochs epochs; dev and test accuracy and macro-F1,
medians over seeds.
Writes results.json and results.md in --work_dir; finished runs there are reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the rule-made tasks

import rule_tasks  # noqa: E402

from electra_tf.config import ElectraConfig, ModelConfig  # noqa: E402
from electra_tf.data import squad, tasks  # noqa: E402
from electra_tf.finetuning import FinetuneConfig, run  # noqa: E402
from electra_tf.machine import describe  # noqa: E402
from electra_tf.tokenization import WordPieceTokenizer, load_vocab  # noqa: E402

LENGTH, BATCH = 64, 32
SQUAD = dict(doc_stride=24, max_query_length=16, beam_size=5)  # as the learning tests


def model_config(init_checkpoint: str) -> ModelConfig:
    """The shape in the config.json beside the checkpoint (a directory or a prefix)."""
    path = Path(init_checkpoint)
    directory = path if path.is_dir() else path.parent
    return ElectraConfig.from_dict(json.loads((directory / "config.json").read_text())).model


def train_size(name: str, data_dir: Path, tokenizer: WordPieceTokenizer) -> int:
    """Training features of a task: examples, or SQuAD windows."""
    if name in ("squad", "squadv1"):
        examples = squad.read_squad(str(data_dir / "train.json"))
        return len(squad.featurize(examples, tokenizer, LENGTH, SQUAD["doc_stride"],
                                   SQUAD["max_query_length"], training=True))
    return len(tasks.read_split(tasks.get_task(name), str(data_dir), "train")["train"])


def finetune(args, spec: tasks.TaskSpec, data_dir: Path, out: Path, model: ModelConfig,
             init: str, epochs: float, length: int = LENGTH, **kw) -> dict[str, float]:
    """Median dev (and test) metrics over args.num_seeds seeds (finished seeds are kept)."""
    cfg = FinetuneConfig(task=spec, data_dir=str(data_dir), vocab_file=args.vocab_file,
                         output_dir=str(out), model=model, init_checkpoint=init,
                         max_seq_length=length, batch_size=BATCH,
                         learning_rate=args.learning_rate,
                         layerwise_decay=args.layerwise_decay, epochs=epochs,
                         num_seeds=args.num_seeds, steps_per_loop=50, log_every=100, **kw)
    return run(cfg)["median"]


def sweep(args, name: str, model: ModelConfig, tokenizer: WordPieceTokenizer) -> dict:
    """Each arm's median at each budget up to the first that reaches the bar."""
    data_dir = args.work_dir / "data" / name
    if not data_dir.exists():
        rule_tasks.write_task(name, data_dir)
    examples = train_size(name, data_dir, tokenizer)
    result = {"bar": list(rule_tasks.BARS[name]), "train_features": examples, "arms": {}}
    for arm, init in (("pretrained", args.init_checkpoint), ("random", "")):
        medians, reached, budgets = {}, None, args.budgets
        first = result["arms"].get("pretrained", {}).get("steps_to_bar")
        if arm == "random" and first is not None and not args.full_random_sweep:
            budgets = [b for b in budgets if b <= first]  # enough to tell which is fewer
        for steps in budgets:
            epochs = (steps + 0.5) * BATCH / examples  # train_steps = int(...) = steps
            medians[steps] = finetune(args, tasks.get_task(name), data_dir,
                                      args.work_dir / "runs" / name / arm / f"steps_{steps}",
                                      model, init, epochs,
                                      **(SQUAD if name.startswith("squad") else {}))
            if rule_tasks.reached(name, medians[steps]):
                reached = steps
                break
        result["arms"][arm] = {"medians": medians, "steps_to_bar": reached,
                               "largest_budget_run": max(medians)}
        print(f"{name} {arm}: steps to bar {reached}", flush=True)
    return result


def intensity(args, model: ModelConfig) -> dict:
    spec = tasks.generic_spec("intensity", "classification", "tsv", ("text",), "label",
                              test_labels=True)
    return {arm: finetune(args, spec, args.intensity_dir,
                          args.work_dir / "runs" / "intensity" / arm, model, init,
                          args.intensity_epochs, length=args.intensity_length)
            for arm, init in (("pretrained", args.init_checkpoint), ("random", ""))
            if arm in args.intensity_arms.split(",")}


def markdown(results: dict) -> str:
    run = results["run"]
    lines = [f"Run {run['date']} on {run['cores']} cores of {run['cpu']} "
             f"({'with' if run['avx512_bf16'] else 'without'} avx512_bf16). Command:", "",
             "    " + run["command"], "",
             "| task | bar | steps to bar, pretrained | random | dev medians by budget "
             "(pretrained; random) |", "|---|---|---|---|---|"]
    for name, family in results["families"].items():
        keys, bar = family["bar"]
        arms = family["arms"]
        trails = {arm: ", ".join(f"{steps}: " + "/".join(f"{m[k]:.3g}" for k in keys)
                                 for steps, m in arms[arm]["medians"].items())
                  for arm in arms}
        reached = {arm: arms[arm]["steps_to_bar"] or f"> {arms[arm]['largest_budget_run']}"
                   for arm in arms}
        lines.append(f"| {name} | {'/'.join(keys)} >= {bar} | {reached['pretrained']} | "
                     f"{reached['random']} | "
                     f"{trails['pretrained']}; {trails['random']} |")
    if "intensity" in results:
        lines += ["", "| 5-class intensity | accuracy | macro-F1 | test accuracy | test macro-F1 |",
                  "|---|---|---|---|---|"]
        for arm, m in results["intensity"].items():
            lines.append(f"| {arm} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | "
                         f"{m['test_accuracy']:.4f} | {m['test_macro_f1']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init_checkpoint", required=True)
    parser.add_argument("--vocab_file", required=True)
    parser.add_argument("--work_dir", required=True, type=Path)
    parser.add_argument("--families", default=",".join(rule_tasks.BARS))
    parser.add_argument("--budgets", default="25,50,100,200,400")
    parser.add_argument("--num_seeds", type=int, default=3)
    parser.add_argument("--full_random_sweep", action="store_true",
                        help="random weights: every budget up to the bar (default: only up to "
                             "the budget where the checkpoint reached it)")
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--layerwise_decay", type=float, default=0.8)
    parser.add_argument("--intensity_dir", type=Path)
    parser.add_argument("--intensity_epochs", type=float, default=1.0)
    parser.add_argument("--intensity_length", type=int, default=64)
    parser.add_argument("--intensity_arms", default="pretrained,random")
    args = parser.parse_args(argv)
    args.budgets = sorted(int(b) for b in args.budgets.split(","))
    model = model_config(args.init_checkpoint)
    vocab = load_vocab(args.vocab_file, model.vocab_size)
    tokenizer = WordPieceTokenizer(vocab)
    command = " ".join(["python experiments/steps_to_bar.py",
                        *(sys.argv[1:] if argv is None else argv)])
    results = {"run": {"command": command, **describe()},
               "settings": {k: str(v) if isinstance(v, Path) else v
                            for k, v in vars(args).items()}, "families": {}}
    for name in args.families.split(","):
        results["families"][name] = sweep(args, name, model, tokenizer)
    if args.intensity_dir:
        results["intensity"] = intensity(args, model)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.work_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.work_dir / "results.md").write_text(markdown(results))
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
