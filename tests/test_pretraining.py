"""run_pretraining.py end to end on a tiny config: flagfile, logs, eval, resume, signals, flags."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from helpers import sigterm_when, write_corpus, write_vocab

from electra_tf import tokenization
from electra_tf.data import preprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("pretrain")
    vocab = write_vocab(d)
    preprocess.build([str(write_corpus(d / "c.txt", 400))], vocab, str(d / "shards"),
                     preprocess.BuildOptions(max_seq_length=32, num_shards=2,
                                             eval_fraction=0.2))
    (d / "cfg.json").write_text(json.dumps({"model": {
        "vocab_size": vocab.size, "embedding_size": 16, "hidden_size": 32, "num_layers": 2,
        "num_heads": 2, "intermediate_size": 64, "generator_fraction": 0.5,
        "max_position_embeddings": 32}}))
    flagfile = d / "run.flags"
    flagfile.write_text("\n".join([
        "--flagfile=" + os.path.join(ROOT, "configs", "tiny.flags"),
        f"--config_json={d / 'cfg.json'}", f"--vocab_file={vocab.path}",
        f"--train_files={d / 'shards' / 'pretrain_data*'}",
        f"--eval_files={d / 'shards' / 'eval_data*'}", "--max_seq_length=32",
        "--batch_size=16", "--learning_rate=0.002", "--warmup_steps=10", "--train_steps=60",
        "--log_every=20", "--eval_every=30", "--save_every=30", "--steps_per_loop=10",
        "--eval_steps=2"]) + "\n")
    return d, flagfile


def run(*args, timeout=600, **kw):
    return subprocess.run([sys.executable, os.path.join(ROOT, "run_pretraining.py"), *args],
                          capture_output=True, text=True, timeout=timeout, **kw)


@pytest.mark.slow
def test_flagfile_run_learns_and_writes_logs_eval_and_checkpoints(data, tmp_path):
    _, flagfile = data
    as_a_user = {k: v for k, v in os.environ.items()  # the tests set a TF log level: unset it
                 if k not in ("TF_CPP_MIN_LOG_LEVEL", "ELECTRA_TF_QUIET_LOGS")}
    result = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path}", env=as_a_user)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [ln for ln in result.stderr.splitlines() if re.match(r"\d\d:\d\d:\d\d step ", ln)]
    assert len(lines) == 3 and all("ETA" in ln for ln in lines)
    for ln in lines:  # real (non-padding) tokens per second beside sequences per second
        seqs = float(re.search(r"([\d.]+) seq/s", ln).group(1))
        toks = float(re.search(r"(\d+) real tok/s", ln).group(1))
        full = float(re.search(r"rows (\d+)% full", ln).group(1))
        assert 0 < toks <= seqs * 32 and 0 < full <= 100
    losses = [float(ln.split("loss ")[1].split()[0]) for ln in lines]
    assert losses[-1] < losses[0]
    assert sum("eval at step" in ln for ln in result.stderr.splitlines()) == 2
    # TensorFlow's INFO lines through absl stay out (its saver logs one at every checkpoint)
    assert "Sharding callback" not in result.stderr, result.stderr[-3000:]
    assert tf.io.gfile.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
    assert tf.io.gfile.glob(str(tmp_path / "eval" / "events.out.tfevents.*"))
    tags = {v.tag for f in tf.io.gfile.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
            for e in tf.compat.v1.train.summary_iterator(f) for v in e.summary.value}
    assert {"sequences_per_second", "real_tokens_per_second", "row_fill"} <= tags
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-60")
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model"]["hidden_size"] == 32 and saved["pretrain"]["batch_size"] == 16
    assert saved["pretrain"]["adam_bias_correction"] is True  # the tiny preset's


def weights(model_dir):
    """Every saved tensor: model weights (some stored under the optimizer's references), Adam
    slots, the step; not the save counter."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(model_dir)))
    dtypes = reader.get_variable_to_dtype_map()
    names = [n for n, dtype in dtypes.items() if dtype != tf.variant  # the data iterator
             and not n.startswith(("save_counter", "_CHECKPOINTABLE"))]
    return {n: reader.get_tensor(n) for n in names}


@pytest.mark.slow
def test_killed_run_resumes_exactly(data, tmp_path):
    """N steps, SIGKILL, resume, N more == 2N uninterrupted, bitwise (deterministic mode)."""
    _, flagfile = data
    common = [f"--flagfile={flagfile}", "--deterministic", "--eval_files=", "--save_every=20",
              "--train_steps=40"]
    full = run(*common, f"--model_dir={tmp_path / 'full'}")
    assert full.returncode == 0, full.stderr[-3000:]
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "run_pretraining.py"), *common,
                             f"--model_dir={cut}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (tf.train.latest_checkpoint(str(cut)) or "").endswith(
            "ckpt-20"):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tf.train.latest_checkpoint(str(cut)).endswith("ckpt-20")
    resumed = run(*common, f"--model_dir={cut}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr
    a, b = weights(tmp_path / "full"), weights(cut)
    assert a.keys() == b.keys() and len(a) > 100
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_zero(data, tmp_path):
    _, flagfile = data
    code, err = sigterm_when([sys.executable, os.path.join(ROOT, "run_pretraining.py"),
                              f"--flagfile={flagfile}", "--train_steps=100000", "--eval_files=",
                              "--save_every=100000", "--log_every=10",
                              f"--model_dir={tmp_path}"], "/100000  loss")
    assert code == 0, err[-2000:]
    step = int(tf.train.latest_checkpoint(str(tmp_path)).rsplit("-", 1)[1])
    assert step >= 10 and "SIGTERM" in err


def test_resume_with_a_different_config_names_the_key(data, tmp_path):
    d, flagfile = data
    (tmp_path / "config.json").write_text(json.dumps(
        {"model": json.loads((d / "cfg.json").read_text())["model"] | {"num_layers": 3},
         "pretrain": {"max_seq_length": 32}}))
    result = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path}", timeout=120)
    assert result.returncode == 2
    assert "model.num_layers=2 but the run was started with 3" in result.stderr


def vocab_size_run(model_dir, vocab_file, *flags):
    """run_pretraining on the tiny preset (vocab_size 8192) up to its first data check: the
    train files do not exist, so a run that gets past the vocabulary stops there."""
    return run("--model_size=tiny", "--train_files=/nonexistent/shard-*", "--max_seq_length=32",
               f"--model_dir={model_dir}", f"--vocab_file={vocab_file}", *flags, timeout=120)


def test_vocab_size_follows_the_vocab_file_and_a_resumed_run_keeps_its_own(data, tmp_path):
    """A learned vocabulary rarely has the preset's size: the model takes the file's. On
    resume the run's own size stands: another vocabulary is an error naming both sizes."""
    d, _ = data
    size = tokenization.load_vocab(str(d / "vocab.txt")).size
    result = vocab_size_run(tmp_path / "run", d / "vocab.txt")
    assert "/nonexistent/shard-*: matches no TFRecord file" in result.stderr, result.stderr[-2000:]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["vocab_size"] == size != 8192
    bigger = tmp_path / "bigger.txt"
    bigger.write_text((d / "vocab.txt").read_text() + "extra1\nextra2\n")
    result = vocab_size_run(tmp_path / "run", bigger)
    assert result.returncode == 2
    assert f"bigger.txt has {size + 2} tokens but the model config's vocab_size is {size}" in (
        result.stderr.splitlines()[-1])


def test_a_vocab_size_set_in_the_config_must_agree_with_the_vocab_file(data, tmp_path):
    d, _ = data
    size = tokenization.load_vocab(str(d / "vocab.txt")).size
    (tmp_path / "cfg.json").write_text(json.dumps({"model": {"vocab_size": 8192}}))
    result = vocab_size_run(tmp_path / "run", d / "vocab.txt",
                            f"--config_json={tmp_path / 'cfg.json'}")
    assert result.returncode == 2
    assert f"vocab.txt has {size} tokens but the model config's vocab_size is 8192" in (
        result.stderr.splitlines()[-1])


@pytest.mark.parametrize("flag,message", [
    ("--strategy=gpus", "Flags parsing error"),
    ("--train_files=/nonexistent/shard-*", "/nonexistent/shard-*: matches no TFRecord file"),
    ("--accumulation_steps=3", "--batch_size=16 is not divisible by 1 replicas x 3"),
    ("--train_steps=-5", "pretrain.train_steps"),
    ("--tpu=grpc://127.0.0.1:1", "no TPU server answers there"),
])
def test_bad_flags_fail_fast_with_one_clear_line(data, tmp_path, flag, message):
    _, flagfile = data
    start = time.time()
    result = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path}", flag, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-1500:]
    assert time.time() - start < 60


def test_a_missing_init_checkpoint_is_the_first_error(data, tmp_path):
    _, flagfile = data
    fewer = tmp_path / "vocab.txt"  # a vocabulary of the wrong size: an error too, but later
    fewer.write_text("".join(open(data[0] / "vocab.txt").readlines()[:-3]))
    result = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path / 'run'}",
                 f"--vocab_file={fewer}", f"--init_checkpoint={tmp_path / 'init' / 'model.ckpt'}",
                 timeout=120)
    assert result.returncode == 2
    assert (f"error: --init_checkpoint={tmp_path / 'init' / 'model.ckpt'}: neither a "
            "checkpoint prefix") in result.stderr.splitlines()[-1]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(data, tmp_path):
    _, flagfile = data
    # an absurd learning rate overflows the weights within the first loop of 10 steps
    result = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path}", "--eval_files=",
                 "--learning_rate=1e30", "--warmup_steps=0", "--train_steps=200",
                 "--save_every=10", "--log_every=10", "--steps_per_loop=10")
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    match = re.search(r"loss is nan in the (\d+) steps ending at step (\d+)", last)
    assert match and int(match.group(2)) <= 10, last  # caught in its loop, with its step
    assert "last good checkpoint (None) is kept" in last
    assert tf.train.latest_checkpoint(str(tmp_path)) is None  # nothing non-finite was saved


@pytest.mark.slow
def test_corrupt_record_mid_shard_stops_naming_the_shard(data, tmp_path):
    """A record that fails its checksum past the first (which is checked before training)
    stops the run with one line naming the shard, not TF's file-less 'corrupted record at N'."""
    d, flagfile = data
    shards = tmp_path / "shards"
    shards.mkdir()
    for f in (d / "shards").glob("pretrain_data*"):
        (shards / f.name).write_bytes(f.read_bytes())
    victim = sorted(shards.iterdir())[1]
    flipped = bytearray(victim.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    victim.write_bytes(bytes(flipped))
    result = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path / 'run'}", "--eval_files=",
                 f"--train_files={shards / 'pretrain_data*'}", "--train_steps=20",
                 timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    pattern = rf"error: {re.escape(str(victim))}: corrupted record at \d+ \(checksum"
    assert re.search(pattern, last), last
    assert "the last checkpoint (None) is kept" in last


@pytest.mark.slow
def test_warm_start_and_accumulation_from_flags(data, tmp_path):
    """--init_checkpoint loads weights only (step and optimizer start fresh); a run with
    --accumulation_steps=2 trains from it."""
    _, flagfile = data
    first = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path / 'a'}", "--eval_files=",
                "--train_steps=10", "--save_every=10", "--log_every=10")
    assert first.returncode == 0, first.stderr[-2000:]
    source = tf.train.latest_checkpoint(str(tmp_path / "a"))
    second = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path / 'b'}", "--eval_files=",
                 f"--init_checkpoint={source}", "--accumulation_steps=2", "--train_steps=10",
                 "--save_every=10", "--log_every=10", "--stop_after=2", "--steps_per_loop=1",
                 "--noadam_bias_correction")
    assert second.returncode == 0, second.stderr[-2000:]
    saved = json.loads((tmp_path / "b" / "config.json").read_text())["pretrain"]
    assert saved["adam_bias_correction"] is False  # the flag over the tiny preset
    assert "warm start (weights only)" in second.stderr and "--stop_after" in second.stderr
    assert tf.train.latest_checkpoint(str(tmp_path / "b")).endswith("ckpt-2")  # fresh step
    bigger = tmp_path / "bigger.json"  # a warm start into another shape stops with one line
    bigger.write_text(json.dumps({"model": json.loads((data[0] / "cfg.json").read_text())["model"]
                                  | {"num_layers": 3}}))
    wrong = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path / 'c'}", "--eval_files=",
                f"--init_checkpoint={source}", f"--config_json={bigger}", timeout=300)
    assert wrong.returncode == 2 and "does not hold every weight" in wrong.stderr.splitlines()[-1]
    a = tf.train.load_checkpoint(source)
    b = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "b")))
    word = [n for n in a.get_variable_to_shape_map() if "word_embeddings" in n
            and "optimizer" not in n.split("/")[0:1] and ".OPTIMIZER_SLOT" not in n]
    assert word, "the checkpoint has no word embedding table"
    moved = np.abs(a.get_tensor(word[0]) - b.get_tensor(word[0])).max()
    assert 0 < moved < 0.05  # the warm weights, then a small step (step 0 has lr 0)


@pytest.mark.slow
def test_masked_lm_baseline_trains_and_its_encoder_loads_for_fine_tuning(data, tmp_path):
    """--objective=mlm (the BERT baseline of experiments/): MLM loss only, starting near ln V
    and falling; no generator in the checkpoint; the discriminator-shaped encoder loads into
    fine-tuning like an ELECTRA discriminator."""
    from electra_tf.checkpoints import initialize
    from electra_tf.config import ElectraConfig
    from electra_tf.models import Discriminator

    d, flagfile = data
    result = run(f"--flagfile={flagfile}", f"--model_dir={tmp_path}", "--objective=mlm",
                 "--eval_files=")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "far from" not in result.stderr  # first loss near ln V, not ln V + 50 ln 2
    lines = [ln for ln in result.stderr.splitlines() if re.match(r"\d\d:\d\d:\d\d step ", ln)]
    mlm = [float(ln.split(" mlm ")[1].split()[0]) for ln in lines]
    total = [float(ln.split("loss ")[1].split()[0]) for ln in lines]
    assert total == mlm and mlm[-1] < mlm[0]
    assert all(" mlm_acc " in ln and " disc " not in ln and "auc" not in ln for ln in lines)
    saved = ElectraConfig.from_json((tmp_path / "config.json").read_text())
    assert (saved.pretrain.objective, saved.pretrain.mask_token_rate,
            saved.pretrain.random_token_rate) == ("mlm", 0.8, 0.1)
    ckpt = tf.train.latest_checkpoint(str(tmp_path))
    names = [n for n, _ in tf.train.list_variables(ckpt)]
    assert not any("generator" in n for n in names)
    assert any(n.startswith("model/mlm_head/") for n in names)

    class Task:  # what initialize() needs of a task model
        discriminator = Discriminator(saved.model)

    Task.discriminator.build()
    initialize(Task, ckpt)
    reader = tf.train.load_checkpoint(ckpt)
    np.testing.assert_array_equal(  # the trained shared table, now the discriminator's
        Task.discriminator.encoder.embeddings.word_embeddings.numpy(),
        reader.get_tensor("model/embeddings/word_embeddings/.ATTRIBUTES/VARIABLE_VALUE"))
