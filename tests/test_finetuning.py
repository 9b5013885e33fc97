"""Fine-tuning: layer-wise LR decay, initialization, every task type end to end, the CLI.

That each task family learns (and serves what it learned): test_learning.py."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import TASK_VOCAB, sigterm_when, write_glue, write_squad, write_vocab

from electra_tf import convert, optimization
from electra_tf.checkpoints import initialize
from electra_tf.config import ModelConfig
from electra_tf.data import tasks
from electra_tf.errors import ConfigError, DataError
from electra_tf.finetuning import FinetuneConfig, run
from electra_tf.heads import build_task_model
from electra_tf.models import build_pretrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    return write_vocab(tmp_path_factory.mktemp("ft_vocab"), TASK_VOCAB)


def tiny_model(vocab_size: int, layers: int = 2) -> ModelConfig:
    return ModelConfig(vocab_size=vocab_size, embedding_size=16, hidden_size=32,
                       num_layers=layers, num_heads=2, intermediate_size=64,
                       generator_fraction=0.5, max_position_embeddings=64)


# --- layer-wise learning-rate decay ------------------------------------------------------------

@pytest.mark.parametrize("mode", ["official", "corrected"])
def test_each_variable_learning_rate_follows_the_depth_formula(mode, vocab):
    n, decay, lr = 3, 0.5, 1e-3
    model = build_task_model(tiny_model(vocab.size, layers=n), "classification", 3)
    variables = model.trainable_variables
    opt = optimization.finetuning_optimizer(variables, lr, total_steps=10, warmup_steps=0,
                                            num_layers=n, layerwise_decay=decay, mode=mode,
                                            weight_decay=0.0)
    for v in variables:  # from zero, the first update is exactly -lr_v * m / (sqrt(v) + eps)
        v.assign(tf.zeros_like(v))
    opt.apply_gradients([(tf.ones_like(v), v) for v in variables])
    adam_step = 0.1 / (np.sqrt(0.001) + 1e-6)  # m / (sqrt(v) + eps) for g = 1, no correction
    top = n + 2 if mode == "official" else n + 1  # the documented exponents
    expected_by_group = {"embeddings": decay ** top, "head": 1.0,
                         **{f"layer_{i}": decay ** (top - 1 - i) for i in range(n)}}
    seen = set()
    for v in variables:
        group = next((g for g in expected_by_group if f"/{g}/" in v.path), None)
        if "/embeddings_project/" in v.path:
            group = "embeddings"
        group = group or "head"
        seen.add(group)
        effective = -v.numpy().astype(np.float64) / adam_step / lr
        np.testing.assert_allclose(effective, expected_by_group[group], rtol=1e-5,
                                   err_msg=v.path)
    assert seen == set(expected_by_group)
    if mode == "official":  # the upstream off-by-one: the top layer gets decay^2
        assert expected_by_group[f"layer_{n - 1}"] == decay ** 2


def test_layer_depths_and_missing_scales():
    assert optimization.layer_depth("m/discriminator/encoder/embeddings/word_embeddings", 12) == 0
    assert optimization.layer_depth("m/discriminator/encoder/embeddings_project/kernel", 12) == 0
    assert optimization.layer_depth("m/discriminator/encoder/layer_11/query/kernel", 12) == 12
    assert optimization.layer_depth("m/classifier/kernel", 12) == 13
    assert optimization.layerwise_lr_scale(0, 12, 0.8, "corrected") == pytest.approx(0.8 ** 13)
    with pytest.raises(ValueError, match="unknown layer-wise decay mode"):
        optimization.layerwise_lr_scale(0, 12, 0.8, "gradient")
    opt = optimization.LayerwiseAdamWeightDecay(1e-3, lr_scales={})
    with pytest.raises(ValueError, match="no layer-wise learning-rate scale"):
        opt.build([keras.Variable(1.0, name="stray")])


# --- initialization ------------------------------------------------------------------------

def test_init_from_pretraining_checkpoint_loads_the_discriminator_only(vocab, tmp_path):
    from electra_tf.config import ElectraConfig, PretrainConfig

    cfg = ElectraConfig(model=tiny_model(vocab.size), pretrain=PretrainConfig(max_seq_length=32))
    pretrainer = build_pretrainer(cfg)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=pretrainer), str(tmp_path), 1)
    manager.save(checkpoint_number=7)
    model = build_task_model(cfg.model, "classification", 2)
    head_before = [v.numpy() for v in model.head_variables()]
    initialize(model, str(tmp_path))  # the run directory: its latest checkpoint
    ours = convert.discriminator_variables(model.discriminator)
    theirs = convert.discriminator_variables(pretrainer.discriminator)
    for name, variable in theirs.items():
        np.testing.assert_array_equal(ours[name].numpy(), variable.numpy(), err_msg=name)
    for before, v in zip(head_before, model.head_variables()):
        np.testing.assert_array_equal(before, v.numpy())
    wider = build_task_model(tiny_model(vocab.size, layers=3), "classification", 2)
    with pytest.raises(ConfigError, match="does not match the model config"):
        initialize(wider, str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no checkpoint in this directory"):
        initialize(model, str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="neither a checkpoint prefix"):
        initialize(model, str(tmp_path / "ckpt-8"))


# --- every task type end to end ------------------------------------------------------------

def finetune(vocab, spec, data_dir, out, **kw):
    settings = dict(max_seq_length=32, batch_size=16, eval_batch_size=16, learning_rate=2e-3,
                    epochs=4.0, steps_per_loop=5, log_every=10, save_every=1000)
    settings.update(kw)
    cfg = FinetuneConfig(task=spec, data_dir=str(data_dir), vocab_file=vocab.path,
                         output_dir=str(out), model=tiny_model(vocab.size), **settings)
    results = run(cfg)
    saved = json.loads((out / "results.json").read_text())
    assert saved["median"] == results["median"] and set(saved["seeds"]) == {str(cfg.seed)}
    return results["median"], out / f"seed_{cfg.seed}"


def test_glue_classification_learns_and_writes_a_submission(vocab, tmp_path):
    data = write_glue(tmp_path / "SST-2", "sst", n_train=96, n_dev=32, n_test=12)
    median, seed_dir = finetune(vocab, tasks.get_task("sst"), data, tmp_path / "out",
                                epochs=6.0)
    assert median["accuracy"] >= 0.9  # the label is the word "good" or "bad"
    lines = (seed_dir / "test" / "SST-2.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 13
    assert all(row.split("\t")[1] in ("0", "1") for row in lines[1:])
    dev = (seed_dir / "dev_predictions.tsv").read_text().splitlines()
    assert dev[0] == "id\tlabel\tprediction" and len(dev) == 33


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_squad_end_to_end(vocab, tmp_path, version):
    write_squad(tmp_path / "train.json", version, copies=8, impossible=4 if version == "2.0"
                else 0, bad=1)
    write_squad(tmp_path / "dev.json", version, impossible=2 if version == "2.0" else 0)
    name = "squad" if version == "2.0" else "squadv1"
    median, seed_dir = finetune(vocab, tasks.get_task(name), tmp_path, tmp_path / "out",
                                max_seq_length=48, doc_stride=16, max_query_length=12,
                                epochs=1.0, beam_size=5)
    keys = {"exact", "f1", "best_exact", "best_f1"} if version == "2.0" else {
        "exact_match", "f1"}
    assert keys <= set(median) and 0.0 <= median["f1"] <= 100.0
    answers = json.loads((seed_dir / "dev_predictions.json").read_text())
    assert len(answers) == 4 + (2 if version == "2.0" else 0)
    assert (seed_dir / "dev_nbest.json").exists()
    assert (seed_dir / "dev_null_odds.json").exists() == (version == "2.0")


def write_yesno(directory, splits, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in splits:
        rows = []
        for _ in range(n):
            y = str(rng.choice(["yes", "no"]))
            word = "good" if y == "yes" else "bad"
            rows.append(json.dumps({"q": "is it good ?", "p": f"the film was {word} .",
                                    "answer": y}))
        (directory / f"{split}.jsonl").write_text("\n".join(rows) + "\n")


def test_generic_jsonl_pairs_end_to_end(vocab, tmp_path):
    write_yesno(tmp_path, (("train", 48), ("dev", 16)))
    spec = tasks.generic_spec("yesno", "classification", "jsonl", ("q", "p"), "answer")
    median, seed_dir = finetune(vocab, spec, tmp_path, tmp_path / "out", epochs=1.0)
    assert set(median) == {"accuracy", "macro_f1"}
    assert not (seed_dir / "test_predictions.tsv").exists()  # no test file: nothing written
    saved = json.loads((tmp_path / "out" / "finetune_config.json").read_text())
    assert saved["task"]["labels"] == ["no", "yes"]  # learned from train, kept for export


def test_generic_labelled_test_file_is_scored(vocab, tmp_path):
    write_yesno(tmp_path, (("train", 64), ("dev", 16), ("test", 24)))
    spec = tasks.generic_spec("yesno", "classification", "jsonl", ("q", "p"), "answer",
                              test_labels=True)
    median, seed_dir = finetune(vocab, spec, tmp_path, tmp_path / "out", epochs=1.0)
    assert set(median) == {"accuracy", "macro_f1", "test_accuracy", "test_macro_f1"}
    gold = [json.loads(line)["answer"] for line in
            (tmp_path / "test.jsonl").read_text().splitlines()]
    rows = [line.split("\t") for line in
            (seed_dir / "test_predictions.tsv").read_text().splitlines()[1:]]
    predicted = [row[-1] for row in rows]
    assert len(predicted) == 24
    assert [row[1] for row in rows] == gold  # the gold column, as in dev's file
    assert median["test_accuracy"] == pytest.approx(np.mean(np.array(gold) == predicted))
    (tmp_path / "test.jsonl").write_text(json.dumps(
        {"q": "is it good ?", "p": "the film was good .", "answer": "maybe"}) + "\n")
    with pytest.raises(DataError, match=r"\(test split\).*'maybe'"):
        finetune(vocab, spec, tmp_path, tmp_path / "out2", epochs=1.0)


@pytest.mark.slow
def test_init_from_an_exported_savedmodel(vocab, tmp_path):
    from electra_tf import export

    source = build_task_model(tiny_model(vocab.size), "classification", 2)
    export.export(source.discriminator, vocab, str(tmp_path / "encoder"), max_seq_length=16)
    model = build_task_model(tiny_model(vocab.size), "tagging", 3)
    initialize(model, str(tmp_path / "encoder"))
    ours = convert.discriminator_variables(model.discriminator)
    for name, variable in convert.discriminator_variables(source.discriminator).items():
        np.testing.assert_array_equal(ours[name].numpy(), variable.numpy(), err_msg=name)


# --- the command line ---------------------------------------------------------------------

def cli(*args, timeout=600):
    return subprocess.run([sys.executable, os.path.join(ROOT, "run_finetuning.py"), *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_seeds_median_table_and_resume(vocab, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(1)
    for split, n in (("train", 64), ("dev", 20), ("test", 8)):
        rows = [f"{'pos' if y else 'neg'}\tthe film was {'good' if y else 'bad'} ."
                for y in rng.integers(0, 2, n)]
        (data / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "model.json").write_text(json.dumps(
        {"model": {k: v for k, v in tiny_model(vocab.size).__dict__.items()}}))
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("\n".join([
        "--task=generic", f"--data_dir={data}", f"--vocab_file={vocab.path}",
        f"--config_json={tmp_path / 'model.json'}", "--model_size=tiny", "--text_columns=1",
        "--label_column=0", "--nohas_header", "--max_seq_length=16", "--batch_size=16",
        "--epochs=2", "--num_seeds=3", "--log_every=4", "--steps_per_loop=4",
        "--test_has_labels"]) + "\n")
    out = tmp_path / "out"
    result = cli(f"--flagfile={flagfile}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["seeds"]) == {"0", "1", "2"}
    for metric, value in saved["median"].items():
        assert value == pytest.approx(float(np.median(
            [saved["seeds"][s][metric] for s in ("0", "1", "2")])))
    table = result.stdout.strip().splitlines()
    assert table[0].split() == ["seed", "accuracy", "macro_f1", "test_accuracy",
                                "test_macro_f1"] and table[-1].startswith("median")
    progress = [ln for ln in result.stderr.splitlines() if "ETA" in ln]
    assert len(progress) == 3 * 2  # 8 steps, every 4
    # throughput measured after the first (traced) step: known from the first line on
    assert all(float(ln.split("examples/s")[0].split()[-1]) > 0 for ln in progress)
    for seed in range(3):
        assert (out / f"seed_{seed}" / "test_predictions.tsv").exists()
    again = cli(f"--flagfile={flagfile}", f"--output_dir={out}")  # finished seeds are kept
    assert again.returncode == 0 and "already finished" in again.stderr
    assert json.loads((out / "results.json").read_text())["median"] == saved["median"]


@pytest.mark.slow
def test_sigterm_saves_the_seed_and_the_same_command_resumes_it(vocab, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev"):
        (data / f"{split}.tsv").write_text("".join(
            f"{'pos' if i % 2 else 'neg'}\tthe film was {'good' if i % 2 else 'bad'} .\n"
            for i in range(32)))
    (tmp_path / "model.json").write_text(json.dumps({"model": tiny_model(vocab.size).__dict__}))
    flags = ["--task=generic", f"--data_dir={data}", f"--vocab_file={vocab.path}",
             f"--config_json={tmp_path / 'model.json'}", "--model_size=tiny",
             "--text_columns=1", "--label_column=0", "--nohas_header", "--max_seq_length=16",
             "--batch_size=16", "--epochs=400", "--log_every=20", "--save_every=100000",
             f"--output_dir={tmp_path / 'out'}"]
    code, err = sigterm_when([sys.executable, os.path.join(ROOT, "run_finetuning.py"), *flags,
                              "--steps_per_loop=1"], "ETA")
    assert code == 0, err[-2000:]
    seed_dir = tmp_path / "out" / "seed_0"
    step = int(tf.train.latest_checkpoint(str(seed_dir)).rsplit("-", 1)[1])
    assert 20 <= step < 800 and "SIGTERM" in err
    assert not (seed_dir / "dev_metrics.json").exists()  # not evaluated: not finished
    again = cli(*flags, "--steps_per_loop=100")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resumed from {seed_dir}/ckpt-{step}" in again.stderr
    assert tf.train.latest_checkpoint(str(seed_dir)).endswith("ckpt-800")
    assert (tmp_path / "out" / "results.json").exists()


def test_cli_bad_task_is_one_clear_line(vocab, tmp_path):
    result = cli("--task=glue-x", f"--data_dir={tmp_path}", f"--vocab_file={vocab.path}",
                 f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    assert "run_finetuning.py: error: unknown task 'glue-x'" in result.stderr
    assert not (tmp_path / "out").exists()


# --- the shape and the per-size defaults from the checkpoint (in-process: run_finetuning's flags)

def finetuning_flags(*args):
    """run_finetuning's absl flags parsed from `args` (the script imported as a module)."""
    sys.path.insert(0, ROOT)
    import run_finetuning

    run_finetuning.FLAGS.unparse_flags()
    run_finetuning.FLAGS(["run_finetuning.py", *args])
    return run_finetuning


def converted(directory, size: str, vocab_size: int) -> str:
    """A converted checkpoint's directory: config.json of a preset's shape (no weights read)."""
    from electra_tf.config import get_config

    directory.mkdir()
    cfg = get_config(size).replace(model={"vocab_size": vocab_size})
    (directory / "config.json").write_text(cfg.to_json())
    (directory / "model.ckpt.index").write_bytes(b"")
    return str(directory)


def test_defaults_come_from_the_checkpoints_shape_and_are_logged(vocab, tmp_path, monkeypatch):
    init = converted(tmp_path / "large", "large", vocab.size)
    spec = tasks.get_task("rte")
    script = finetuning_flags(f"--init_checkpoint={init}")
    model = script.resolve_model()
    assert (model.num_layers, model.hidden_size) == (24, 1024)  # config.json, not small
    logged = []
    monkeypatch.setattr(script.logging, "info", lambda text, *a: logged.append(text % a))
    assert script.resolve_recipe(model, spec) == (5e-5, 0.9, 10.0)
    assert ("nearest published size, large (this model: 24 layers x 1024 hidden; epochs: the "
            "task's): learning_rate 5e-05, layerwise_decay 0.9, epochs 10") in logged[-1]
    script = finetuning_flags(f"--init_checkpoint={init}", "--learning_rate=1e-4",
                              "--model_size=large")  # agrees with config.json: fine
    assert script.resolve_recipe(script.resolve_model(), spec) == (1e-4, 0.9, 10.0)
    assert "learning_rate 0.0001 (given), layerwise_decay 0.9, epochs 10" in logged[-1]
    small = converted(tmp_path / "small", "small", vocab.size)
    script = finetuning_flags(f"--init_checkpoint={small}", "--model_size=large")
    with pytest.raises(ConfigError, match=r"--model_size=large \(24 layers x 1024\) disagrees "
                                          r"with .*small/config.json \(12 layers x 256\)"):
        script.resolve_model()
    script = finetuning_flags("--model_size=base")  # no checkpoint: the preset, its defaults
    assert script.resolve_recipe(script.resolve_model(), spec)[:2] == (1e-4, 0.8)
    tiny = finetuning_flags("--model_size=tiny")  # our own preset is not called published
    tiny.resolve_recipe(tiny.resolve_model(), spec)
    assert "nearest this project's preset, tiny (this model: " in logged[-1]


def test_pooling_comes_from_the_checkpoint_unless_given_and_is_logged(vocab, tmp_path,
                                                                     monkeypatch):
    logged = []
    script = finetuning_flags("--model_size=tiny")
    monkeypatch.setattr(script.logging, "info", lambda text, *a: logged.append(text % a))
    assert script.resolve_model().pooling == "cls"
    assert logged[-1] == "pooling for classification and regression heads: cls (the default)"
    sentence = converted(tmp_path / "sentence", "tiny", vocab.size)  # as converted from a
    saved = json.loads((tmp_path / "sentence" / "config.json").read_text())  # mean-pooling
    saved["model"]["pooling"] = "mean"  # sentence-transformers model
    (tmp_path / "sentence" / "config.json").write_text(json.dumps(saved))
    assert finetuning_flags(f"--init_checkpoint={sentence}").resolve_model().pooling == "mean"
    assert logged[-1] == ("pooling for classification and regression heads: mean (from "
                          f"{sentence}/config.json)")
    script = finetuning_flags(f"--init_checkpoint={sentence}", "--pooling=cls")
    assert script.resolve_model().pooling == "cls"
    assert logged[-1].endswith("cls (--pooling)")


def test_vocab_size_follows_the_vocab_file_unless_the_checkpoint_or_config_sets_it(
        vocab, tmp_path):
    """From random weights the preset's shape takes the vocabulary's size (a learned one
    rarely has the preset's); a checkpoint's config.json and --config_json keep theirs."""
    script = finetuning_flags("--model_size=tiny", f"--vocab_file={vocab.path}")
    assert script.resolve_model().vocab_size == vocab.size != 8192
    init = converted(tmp_path / "init", "tiny", vocab.size + 7)
    script = finetuning_flags(f"--init_checkpoint={init}", f"--vocab_file={vocab.path}")
    assert script.resolve_model().vocab_size == vocab.size + 7  # then a clear mismatch error
    (tmp_path / "cfg.json").write_text(json.dumps({"model": {"vocab_size": 8192}}))
    script = finetuning_flags("--model_size=tiny", f"--vocab_file={vocab.path}",
                              f"--config_json={tmp_path / 'cfg.json'}")
    assert script.resolve_model().vocab_size == 8192


def test_a_missing_init_checkpoint_is_the_first_error(tmp_path):
    fewer = tmp_path / "vocab.txt"  # 5 tokens; the run would fail later (no data)
    fewer.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    script = finetuning_flags("--task=rte", f"--data_dir={tmp_path}", f"--vocab_file={fewer}",
                              f"--output_dir={tmp_path / 'out'}",
                              f"--init_checkpoint={tmp_path / 'nowhere'}")
    with pytest.raises(ConfigError, match=f"--init_checkpoint={tmp_path / 'nowhere'}: neither"):
        script.main(["run_finetuning.py"])
    assert not (tmp_path / "out").exists()


# --- does pretraining help? (real data) ---------------------------------------------------

PRETRAIN_STEPS = 1500  # about 4-5 minutes on 2 free CPU cores (the whole test: 5-10 minutes)

@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "on 2 CPU cores (2026-11-30), with the tiny preset's bias correction and the shared "
    "embedding direction removed, the demo's setting matches random weights (dev 0.754 vs "
    "0.753, experiments/results/from_scratch.md) but is not 0.02 ahead; earlier recipes up to "
    "9,000 steps lost to random weights (experiments/results/discriminator_lr.md). Strict: "
    "remove this mark once pretraining helps"))
def test_pretraining_helps_on_the_real_sentiment_task(shared_dir, tmp_path):
    """Opt-in (ELECTRA_EXPERIMENTS=1): 5-10 minutes, too long for `make test`'s budget.

    experiments/pretraining_helps.py: a tiny model pretrained briefly by our builder +
    pretraining on a corpus slice, fine-tuned on the sentiment task through the generic TSV
    path, 3 seeds per arm, against the same model fine-tuned from random weights: the
    pretrained median must be clearly higher."""
    if os.environ.get("ELECTRA_EXPERIMENTS") != "1":
        pytest.skip("5-10 minute experiment: run with ELECTRA_EXPERIMENTS=1")
    corpus, task_dir = shared_dir / "data" / "corpus", shared_dir / "data" / "tasks" / "sentiment"
    if not (corpus / "fortune.txt").exists() or not (task_dir / "train.tsv").exists():
        pytest.skip(f"{corpus}/fortune.txt or {task_dir}/train.tsv not found")
    sys.path.insert(0, os.path.join(ROOT, "experiments"))
    from pretraining_helps import compare

    medians = compare(shared_dir, tmp_path, PRETRAIN_STEPS)
    (tmp_path / "medians.json").write_text(json.dumps(medians))
    print("sentiment dev accuracy, median of 3 seeds:", medians)
    assert medians["pretrained"] >= medians["random"] + 0.02, medians



def test_reinit_layers_gives_the_top_blocks_fresh_weights_only(vocab):
    """--reinit_layers=k after loading: the top k blocks get new initial weights (LayerNorm 1/0,
    biases 0, kernels ~N(0, 0.02)); lower blocks and embeddings keep the checkpoint's."""
    from electra_tf.finetuning_io import reinitialize_top_blocks

    cfg = tiny_model(vocab.size, layers=3)
    model = build_task_model(cfg, "classification", num_labels=2)
    encoder = model.discriminator.encoder
    for w in encoder.weights:  # "pretrained" values: far from any initializer
        w.assign(tf.fill(w.shape, 0.5))
    reinitialize_top_blocks(encoder, 2)
    assert all(np.all(w.numpy() == 0.5) for w in encoder.blocks[0].weights)
    assert all(np.all(w.numpy() == 0.5) for w in encoder.embeddings.weights)
    for block in encoder.blocks[1:]:
        for w in block.weights:
            value, name = w.numpy(), w.path
            if "layer_norm" in name:
                assert np.all(value == (1.0 if name.endswith("gamma") else 0.0)), name
            elif name.endswith("bias"):
                assert np.all(value == 0.0), name
            else:
                assert abs(value.std() - 0.02) < 0.005 and np.abs(value).max() <= 0.04, name
    with pytest.raises(ConfigError, match="reinit_layers"):
        FinetuneConfig(task=tasks.get_task("sst-2"), data_dir="d", vocab_file="v",
                       output_dir="o", model=cfg, max_seq_length=32, reinit_layers=4)


# --- a briefly pretrained checkpoint fine-tunes ---------------------------------------------

def pretrain_briefly(vocab, directory, steps: int = 300) -> str:
    """The tiny recipe (its learning rate, warmup share and Adam) for a few hundred steps on
    text of the task's own kind: the sentences below, unlabelled."""
    from helpers import sentence

    from electra_tf.config import ElectraConfig, PretrainConfig, get_config
    from electra_tf.data import preprocess
    from electra_tf.pretraining import RunOptions
    from electra_tf.pretraining import run as pretrain

    rng = np.random.default_rng(0)
    lines = []
    for _ in range(300):
        lines += [sentence(rng, bool(rng.integers(2)), int(rng.integers(3, 9)))
                  for _ in range(rng.integers(2, 8))] + [""]
    (directory / "corpus.txt").write_text("\n".join(lines) + "\n")
    preprocess.build([str(directory / "corpus.txt")], vocab, str(directory / "shards"),
                     preprocess.BuildOptions(max_seq_length=32, num_shards=1,
                                             eval_fraction=0.1))
    recipe = get_config("tiny").pretrain
    cfg = ElectraConfig(model=tiny_model(vocab.size), pretrain=PretrainConfig(
        batch_size=16, max_seq_length=32, train_steps=steps, learning_rate=recipe.learning_rate,
        warmup_steps=steps // 10, adam_bias_correction=recipe.adam_bias_correction))
    pretrain(cfg, RunOptions(model_dir=str(directory / "pretrain"),
                             train_files=str(directory / "shards" / "pretrain_data*"),
                             vocab_file=vocab.path, steps_per_loop=50, log_every=steps,
                             eval_every=steps, save_every=steps))
    return str(directory / "pretrain")


@pytest.mark.slow
def test_a_briefly_pretrained_checkpoint_does_not_sit_at_chance(vocab, tmp_path):
    """Pretrained for 300 steps, the tiny discriminator's word embeddings put ~70% of their
    variance along one direction (random rows: ~14%), and the words that decide the label differ
    little along the rest. Fine-tuned as loaded, some seeds stayed at the majority class (loss
    ln 2); with that direction removed (--embedding_directions_removed=1) every seed learns."""
    init = pretrain_briefly(vocab, tmp_path)
    data = write_glue(tmp_path / "SST-2", "sst", n_train=96, n_dev=64, n_test=4)
    cfg = FinetuneConfig(task=tasks.get_task("sst"), data_dir=str(data), vocab_file=vocab.path,
                         output_dir=str(tmp_path / "ft"), model=tiny_model(vocab.size),
                         init_checkpoint=init, embedding_directions_removed=1, num_seeds=3,
                         max_seq_length=32, batch_size=16, eval_batch_size=16,
                         learning_rate=5e-4, epochs=12.0, steps_per_loop=6, log_every=12)
    seeds = run(cfg)["seeds"]
    assert len(seeds) == 3
    assert all(s["accuracy"] >= 0.9 for s in seeds.values()), seeds  # majority class: 0.56


def test_removing_the_top_embedding_direction(vocab):
    from electra_tf.finetuning_io import remove_top_directions, top_direction_share

    rng = np.random.default_rng(0)
    model = build_task_model(tiny_model(vocab.size), "classification", 2)
    embeddings = model.discriminator.encoder.embeddings
    words = rng.normal(0, 0.02, embeddings.word_embeddings.shape)  # [V, E]
    shared = rng.normal(0, 1, words.shape[1])
    degenerate = words + np.outer(rng.normal(1, 0.5, len(words)), shared)  # along one direction
    embeddings.word_embeddings.assign(degenerate)
    assert top_direction_share(degenerate) > 0.9
    remove_top_directions(embeddings, 1)
    flat = embeddings.word_embeddings.numpy()
    assert top_direction_share(flat) < 0.2
    np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-5)  # float32 rows of norm ~4
    np.testing.assert_allclose(np.median(np.linalg.norm(flat, axis=1)),
                               np.median(np.linalg.norm(degenerate, axis=1)), rtol=1e-5)
    along = np.abs(flat @ (shared / np.linalg.norm(shared)))  # [V]: what is left of it
    assert along.max() < 0.01 * np.median(np.linalg.norm(flat, axis=1))
    remove_top_directions(embeddings, 0)  # 0: reports only
    np.testing.assert_array_equal(embeddings.word_embeddings.numpy(), flat)
    with pytest.raises(ConfigError, match="embedding_directions_removed"):
        FinetuneConfig(task=tasks.get_task("sst-2"), data_dir="d", vocab_file="v",
                       output_dir="o", model=tiny_model(vocab.size), max_seq_length=32,
                       embedding_directions_removed=16)


def test_new_fine_tuning_flags_reach_the_config(vocab, tmp_path, monkeypatch):
    """--embedding_directions_removed and --adam_bias_correction end in FinetuneConfig (off by
    default: the authors' behaviour)."""
    from electra_tf import finetuning

    data = write_glue(tmp_path / "SST-2", "sst", n_train=8, n_dev=4, n_test=2)
    seen = []
    monkeypatch.setattr(finetuning, "run", lambda cfg: seen.append(cfg) or {"table": ""})
    for extra in ([], ["--embedding_directions_removed=2", "--adam_bias_correction"]):
        script = finetuning_flags("--task=sst-2", f"--data_dir={data}", "--model_size=tiny",
                                  f"--vocab_file={vocab.path}", f"--output_dir={tmp_path}",
                                  *extra)
        script.main(["run_finetuning.py"])
    assert [(c.embedding_directions_removed, c.adam_bias_correction) for c in seen] == [
        (0, False), (2, True)]


def test_every_fine_tuning_field_flag_reaches_the_config(vocab, tmp_path, monkeypatch):
    """The fields that had no flag before the flags were made from FinetuneConfig: set on the
    command line, they end in the config; a bad value names its key."""
    from electra_tf import finetuning

    data = write_glue(tmp_path / "SST-2", "sst", n_train=8, n_dev=4, n_test=2)
    seen = []
    monkeypatch.setattr(finetuning, "run", lambda cfg: seen.append(cfg) or {"table": ""})
    common = ("--task=sst-2", f"--data_dir={data}", "--model_size=tiny",
              f"--vocab_file={vocab.path}", f"--output_dir={tmp_path}")
    finetuning_flags(*common, "--adam_epsilon=1e-8", "--clip_norm=0.5", "--beam_size=7",
                     "--keep_checkpoints=3", "--nodo_lower_case").main(["run_finetuning.py"])
    cfg = seen[-1]
    assert (cfg.adam_epsilon, cfg.clip_norm, cfg.beam_size, cfg.keep_checkpoints,
            cfg.lower_case) == (1e-8, 0.5, 7, 3, False)
    with pytest.raises(ConfigError, match="clip_norm"):
        finetuning_flags(*common, "--clip_norm=0").main(["run_finetuning.py"])
