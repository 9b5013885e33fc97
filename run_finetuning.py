"""Fine-tunes ELECTRA's discriminator on a task, over one or several seeds.

  python run_finetuning.py --task=rte --data_dir=glue/RTE --vocab_file=vocab.txt \
      --init_checkpoint=runs/small --output_dir=runs/small-rte --num_seeds=5

Tasks: the GLUE tasks (cola, sst, mrpc, sts, qqp, mnli, qnli, rte), squadv1, squad (2.0),
ner and chunk (CoNLL files), or `generic` for any TSV/CSV/JSON Lines task described by
--task_type/--format/--text_columns/--label_column (or a --task_spec JSON file).
The model's shape comes from the config.json next to --init_checkpoint (a pretraining run or
a converted checkpoint), else from --model_size (default small) with --vocab_file's size as
vocab_size; --config_json overrides it. So does the heads' pooling (--pooling: [CLS] or the
mean, as a converted sentence-transformers checkpoint records).
Learning rate and layer-wise decay default to the published values of the size nearest to that
shape (logged at the start); epochs to the task's. Results: <output_dir>/results.json
(per-seed dev metrics and their median), seed_<n>/ (checkpoints, dev/test predictions).
"""

from __future__ import annotations

from absl import flags, logging

import electra_tf  # noqa: F401  (before TF: sets its oneDNN option)
from electra_tf import flagdefs
from electra_tf.finetune_config import FINETUNE_PRECISIONS, FinetuneConfig
from electra_tf.optimization import LLRD_MODES

FLAGS = flags.FLAGS
flags.DEFINE_string("task", None, "Task name (cola, sst, mrpc, sts, qqp, mnli, qnli, rte, "
                    "squadv1, squad, ner, chunk) or 'generic'.")
flags.DEFINE_string("model_size", None, "Preset shape (tiny, small, base, large) when "
                    "--init_checkpoint has no config.json (default small); with one, it must "
                    "agree with it.")
flags.DEFINE_string("config_json", None, "JSON {'model': {...}} overrides of the shape.")
flags.DEFINE_enum("pooling", None, ["cls", "mean"], "What classification and regression "
                  "heads read: the [CLS] vector or the mean over the text (default: the "
                  "checkpoint's config.json, where a converted sentence-transformers model "
                  "records its pooling; else cls).")
# Generic tasks.
flags.DEFINE_string("task_spec", None, "JSON task description (generic tasks): name, kind, "
                    "format, text_columns, label_column, has_header, labels, metrics, epochs.")
flags.DEFINE_enum("task_type", "classification", ["classification", "regression", "tagging"],
                  "Generic task kind.")
flags.DEFINE_enum("format", "tsv", ["tsv", "csv", "jsonl", "conll"], "Generic task files: "
                  "train/dev/test.<format> (conll: .txt).")
flags.DEFINE_list("text_columns", ["text"], "One or two text columns (names; indices when "
                  "--nohas_header).")
flags.DEFINE_string("label_column", "label", "Label column (name or index; conll: index).")
flags.DEFINE_bool("has_header", True, "Generic tsv/csv files start with a header row.")
flags.DEFINE_list("labels", [], "Label set in output order (default: the training labels).")
flags.DEFINE_bool("test_has_labels", False, "Generic tasks: the test file has the label column "
                  "too; report test metrics (test_<metric>) beside dev's.")
# One flag per FinetuneConfig field but the task and the model's shape (resolved above).
RESOLVED = ("task", "model")
RENAMED = {"lower_case": "do_lower_case"}
flagdefs.define(FinetuneConfig, {
    "data_dir": "Folder with the task's train/dev(/test) files.",
    "vocab_file": "The vocab.txt the model was pretrained with.",
    "output_dir": "Checkpoints, predictions and results.json. A run there is resumed "
                  "(finished seeds are kept).",
    "init_checkpoint": "Pretraining run dir or checkpoint prefix, a converted (TF1/Hugging "
                       "Face) init checkpoint, a fine-tuning seed dir or an exported "
                       "SavedModel: its discriminator is loaded. Empty: random init.",
    "lower_case": "Uncased tokenization (as the vocabulary).",
    "max_seq_length": "Sequence length (default 128; SQuAD 512).",
    "batch_size": "Global training batch size.",
    "eval_batch_size": "Global evaluation batch size.",
    "learning_rate": "Peak LR (default: 3e-4 small, 1e-4 base, 5e-5 large).",
    "epochs": "Training epochs (default: 3; RTE/STS-B 10; SQuAD 2).",
    "warmup_proportion": "Share of steps with linear warmup.",
    "layerwise_decay": "Layer-wise LR decay (default 0.8; large 0.9); 1.0 turns it off.",
    "llrd_mode": "official: the authors' code (top layer decay^2; the published results); "
                 "corrected: top layer decay^1.",
    "reinit_layers": "Fresh weights for the top k encoder blocks after loading "
                     "--init_checkpoint (helps briefly pretrained models; 0: official).",
    "embedding_directions_removed": "After loading --init_checkpoint, remove the mean and the "
                                    "top k principal directions of the word embeddings "
                                    "(all-but-the-top; 1 helps briefly pretrained models; 0: "
                                    "official).",
    "weight_decay": "Decoupled weight decay.",
    "adam_epsilon": "Adam's epsilon.",
    "adam_bias_correction": "Adam with bias correction (the authors' optimizer has none).",
    "clip_norm": "Global gradient-norm clipping.",
    "num_seeds": "Seeds seed..seed+n-1; results.json holds the median.",
    "seed": "First seed.",
    "doc_stride": "SQuAD: pieces between window starts.",
    "max_query_length": "SQuAD: question pieces kept.",
    "n_best_size": "SQuAD: answers kept per question (n-best file).",
    "max_answer_length": "SQuAD: longest answer in pieces.",
    "beam_size": "SQuAD: start positions kept, and end positions per start, when decoding.",
    "na_threshold": "SQuAD 2.0: answer '' when the no-answer logit is above this (official "
                    "-2.75; results.json also has the best threshold).",
    "strategy": "Distribution strategy.",
    "tpu": "Cloud TPU name, 'local', or grpc://host:port.",
    "precision": "Compute precision.",
    "jit_compile": "Compile the training step with XLA.",
    "steps_per_loop": "Steps per tf.function call.",
    "log_every": "Progress line interval in steps.",
    "save_every": "Checkpoint interval in steps.",
    "keep_checkpoints": "Checkpoints kept per seed.",
}, skip=RESOLVED, renames=RENAMED,
    unset=("max_seq_length", "learning_rate", "epochs", "layerwise_decay"),
    enums={"llrd_mode": LLRD_MODES, "precision": FINETUNE_PRECISIONS,
           "strategy": ["auto", "tpu", "mirrored", "multi_worker", "one_device", "cpu"]})

def _checkpoint_config(init: str) -> tuple[dict, str] | None:
    """The 'model' section of the config.json beside --init_checkpoint, and its path."""
    import json

    import tensorflow as tf

    directory = init if tf.io.gfile.isdir(init) else init.rsplit("/", 1)[0] if "/" in init else "."
    path = f"{directory}/config.json"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f).get("model", {}), path


def resolve_model():
    """The checkpoint's config.json, else the preset (--model_size, default small) with
    --vocab_file's size; then --config_json overrides. A --model_size that disagrees with the
    checkpoint is an error."""
    import dataclasses
    import json

    import tensorflow as tf

    from electra_tf.config import ElectraConfig, ModelConfig, get_config
    from electra_tf.errors import ConfigError
    from electra_tf.tokenization import load_vocab

    model = dataclasses.asdict(get_config(FLAGS.model_size or "small").model)
    if FLAGS.vocab_file:  # a learned vocabulary rarely has the preset's size
        model["vocab_size"] = load_vocab(FLAGS.vocab_file).size
    found = _checkpoint_config(FLAGS.init_checkpoint) if FLAGS.init_checkpoint else None
    if found:
        saved, path = found
        if FLAGS.model_size:
            preset = get_config(FLAGS.model_size).model
            shape = ModelConfig(**{**model, **saved})
            keys = ("hidden_size", "num_layers", "embedding_size", "num_heads")
            if any(getattr(preset, k) != getattr(shape, k) for k in keys):
                raise ConfigError(
                    f"--model_size={FLAGS.model_size} ({preset.num_layers} layers x "
                    f"{preset.hidden_size}) disagrees with {path} ({shape.num_layers} layers x "
                    f"{shape.hidden_size}), the shape of --init_checkpoint's weights: drop "
                    "--model_size")
        model.update(saved)
        logging.info("model shape from %s", path)
    if FLAGS.config_json:
        with tf.io.gfile.GFile(FLAGS.config_json) as f:
            overrides = json.load(f)
        if set(overrides) - {"model", "pretrain"}:
            raise ConfigError(f"{FLAGS.config_json}: expected a 'model' object")
        model.update(overrides.get("model", {}))
    if FLAGS.pooling:
        model["pooling"] = FLAGS.pooling
    logging.info("pooling for classification and regression heads: %s (%s)",
                 model.get("pooling", "cls"), "--pooling" if FLAGS.pooling else
                 f"from {found[1]}" if found and "pooling" in found[0] else "the default")
    # Checked (unknown keys, types, values) by the one config code; the pretraining section
    # plays no part in fine-tuning: any length the positions allow.
    pretrain = {"max_seq_length": model.get("max_position_embeddings", 512)}
    return ElectraConfig.from_dict({"model": model, "pretrain": pretrain}).model


def resolve_recipe(model, spec) -> tuple[float, float, float]:
    """(learning rate, layer-wise decay, epochs): the flags, else the defaults of the published
    size nearest to the model's shape (and the task's epochs); logs which were chosen."""
    from electra_tf.finetuning import size_defaults

    size, lr, decay = size_defaults(model)
    chosen = {"learning_rate": (FLAGS.learning_rate, lr), "layerwise_decay":
              (FLAGS.layerwise_decay, decay), "epochs": (FLAGS.epochs, float(spec.epochs))}
    text = ", ".join(f"{k} {given:g} (given)" if given else f"{k} {default:g}"
                     for k, (given, default) in chosen.items())
    kind = "this project's preset" if size == "tiny" else "published size"  # tiny is ours
    logging.info("fine-tuning defaults of the nearest %s, %s (this model: %d layers x %d "
                 "hidden; epochs: the task's): %s", kind, size, model.num_layers,
                 model.hidden_size, text)
    return tuple(given or default for given, default in chosen.values())
def resolve_task():
    from electra_tf.data import tasks

    if FLAGS.task_spec:
        return tasks.spec_from_json(FLAGS.task_spec)
    if FLAGS.task.lower() == "generic":
        return tasks.generic_spec("generic", FLAGS.task_type, FLAGS.format,
                                  tuple(FLAGS.text_columns), FLAGS.label_column,
                                  FLAGS.has_header, tuple(FLAGS.labels),
                                  test_labels=FLAGS.test_has_labels)
    return tasks.get_task(FLAGS.task)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}")
    from electra_tf.checkpoints import resolve_checkpoint
    from electra_tf.finetuning import run

    for name in ("data_dir", "vocab_file", "output_dir"):
        if not getattr(FLAGS, name):
            raise ValueError(f"--{name} is required")
    if not FLAGS.task and not FLAGS.task_spec:
        raise ValueError("--task (or --task_spec) is required")
    if FLAGS.init_checkpoint:  # a wrong path is the first thing to hear about
        resolve_checkpoint(FLAGS.init_checkpoint)
    spec = resolve_task()
    model = resolve_model()
    lr, decay, epochs = resolve_recipe(model, spec)
    cfg = FinetuneConfig(**{
        **flagdefs.values(FinetuneConfig, skip=RESOLVED, renames=RENAMED),
        "task": spec, "model": model, "learning_rate": lr, "layerwise_decay": decay,
        "epochs": epochs,
        "max_seq_length": FLAGS.max_seq_length or (512 if spec.kind == "squad" else 128)})
    results = run(cfg)
    print(results["table"])


def entry() -> None:
    """Bad flags, configs and data end with one clear line and exit code 2."""
    from electra_tf import cli
    from electra_tf.errors import (
        ConfigError,
        DataError,
        NonFiniteLossError,
        StrategyError,
        VocabError,
    )

    cli.run(main, (ConfigError, DataError, StrategyError, VocabError, ValueError,
                   FileNotFoundError), stopped=(NonFiniteLossError,))


if __name__ == "__main__":
    entry()
