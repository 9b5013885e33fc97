"""What a user sees: TensorFlow's C++ start-up logging stays quiet unless asked for."""

import os
import re
import subprocess
import sys

TF_LINE = re.compile(r"^(?:[IWE]\d{4} |WARNING: All log messages before absl)", re.M)
SNIPPET = ("import electra_tf, tensorflow as tf, subprocess, sys\n"
           "tf.constant(1) + 1\n"  # initializes the devices: 'failed call to cuInit' without GPU
           "subprocess.run([sys.executable, '-c', 'import electra_tf, tensorflow as tf; "
           "tf.constant(1) + 1'], check=True)\n")


def run(**env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("TF_CPP_MIN_LOG_LEVEL", "ELECTRA_TF_QUIET_LOGS")}
    return subprocess.run([sys.executable, "-c", SNIPPET], env={**base, **env},
                          capture_output=True, text=True, timeout=300, check=True).stderr


def test_tensorflow_start_up_logs_are_quiet_by_default_in_every_process():
    assert not TF_LINE.findall(run()), run()


def test_a_log_level_the_user_sets_wins():
    assert TF_LINE.findall(run(TF_CPP_MIN_LOG_LEVEL="0"))


def test_command_lines_log_a_time_and_the_message(tmp_path):
    from helpers import write_corpus, write_vocab

    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, docs=20)
    vocab = write_vocab(tmp_path).path
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, os.path.join(root, "build_pretraining_dataset.py"), f"--input={corpus}",
         f"--output_dir={tmp_path / 'out'}", f"--vocab_file={vocab}", "--max_seq_length=32"],
        capture_output=True, text=True, timeout=300, check=True)
    wrote = [line for line in result.stderr.splitlines() if "wrote" in line]
    # '09:14:29 wrote 12 train ...', not absl's 'I1201 09:14:29.432704 1405... preprocess.py:303]'
    assert wrote and all(re.match(r"\d\d:\d\d:\d\d wrote \d+ train", line) for line in wrote), (
        result.stderr[-2000:])


def test_tensorflow_info_lines_through_absl_are_dropped_but_ours_and_warnings_stay(capfd):
    """TF's checkpoint saver logs 'Sharding callback duration: ... microseconds' through absl
    at every save; our progress lines go through absl too."""
    import logging

    from electra_tf import cli

    def record(path, level=logging.INFO):
        return logging.LogRecord("absl", level, path, 1, "message", (), None)

    tf_file = os.path.join("site-packages", "tensorflow", "python", "checkpoint", "saver.py")
    assert not cli._not_library_info(record(tf_file))
    assert cli._not_library_info(record(tf_file, logging.WARNING))
    assert cli._not_library_info(record(os.path.join("electra_tf", "pretraining.py")))
