"""The diagnostic experiment scripts do what their results rely on."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_config

from electra_tf.checkpoints import load_pretrainer
from electra_tf.models import build_pretrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "experiments"))
import embedding_frequency  # noqa: E402
import encoder_probe  # noqa: E402
import zh_ner  # noqa: E402


def saved_run(directory):
    """A pretraining run's layout: config.json + ckpt-N under `directory`."""
    cfg = tiny_config(vocab_size=64)
    model = build_pretrainer(cfg)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        f.write(cfg.to_json())
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(directory), 1).save()
    return model


def rerandomize(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "rerandomize.py"),
                           *args], capture_output=True, text=True, timeout=300)


def values(model, path_part):
    return {v.path: v.numpy() for v in model.weights if path_part in v.path}


def test_rerandomize_changes_only_the_matched_variables_and_mix_interpolates(tmp_path):
    original = saved_run(tmp_path / "run")
    for mix, out in (("1", "fresh"), ("0.5", "half")):
        result = rerandomize(f"--checkpoint={tmp_path / 'run'}", "--pattern=layer_0/query/",
                             f"--mix={mix}", f"--output_dir={tmp_path / out}")
        assert result.returncode == 0, result.stderr[-2000:]
    fresh, half = load_pretrainer(str(tmp_path / "fresh")), load_pretrainer(str(tmp_path / "half"))
    for path, before in values(original, "").items():
        after = values(fresh, path)[path]
        if "discriminator/encoder/layer_0/query/kernel" in path:
            assert not np.allclose(after, before)
            np.testing.assert_allclose(values(half, path)[path], (before + after) / 2,
                                       rtol=1e-5, atol=1e-6)
        elif "layer_0/query/" not in path or "/discriminator/" not in path:
            np.testing.assert_array_equal(after, before)


def test_rerandomize_names_a_pattern_that_matches_nothing(tmp_path):
    saved_run(tmp_path / "run")
    result = rerandomize(f"--checkpoint={tmp_path / 'run'}", "--pattern=no_such_layer",
                         f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    assert "--pattern='no_such_layer' matches no discriminator variable" in result.stderr


def test_embedding_frequency_finds_a_frequency_direction():
    rng = np.random.default_rng(0)
    counts = np.repeat([0, 5, 50, 500, 5000], 40)  # [V=200]
    direction = rng.normal(size=16)
    table = 0.02 * rng.normal(size=(200, 16)) + np.outer(np.log1p(counts), direction) * 0.05
    result = embedding_frequency.report(table, counts, task_ids=np.array([0, 199, 199]))
    assert result["corr_top_direction_log_count"] > 0.95
    assert [g["rows"] for g in result["groups"]] == [40] * 5
    along = [g["median_along_top"] for g in result["groups"]]
    assert along == sorted(along)  # + is the frequent side
    assert result["groups"][0]["task_token_share"] == 1 / 3
    assert result["groups"][-1]["task_token_share"] == 2 / 3


def test_transformers_reference_pipeline_ties_the_tables_and_steps_every_weight_once():
    # experiments/hf_pipeline.py is the reference of from_scratch.md section 7: its generator
    # must read and update the discriminator's own word table, and its AdamW must hold each
    # parameter once, LayerNorms and biases without weight decay.
    torch = __import__("pytest").importorskip("torch")
    import hf_pipeline

    cfg = tiny_config(vocab_size=64)
    gen, disc = hf_pipeline.fresh_models(cfg)
    table = disc.electra.embeddings.word_embeddings.weight
    assert gen.generator_lm_head.weight is table
    assert gen.electra.embeddings is disc.electra.embeddings
    step = hf_pipeline.optimizer(gen, disc, 1e-3, 10, 2)
    groups = step.opt.param_groups
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len({id(p) for net in (gen, disc)
                                             for p in net.parameters()})
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    for name, p in disc.named_parameters():
        assert (id(p) in no_decay) == ("LayerNorm" in name or name.endswith("bias")), name
    before = table.detach().clone()
    ids_in = torch.randint(5, 64, (2, 8))
    gen(input_ids=ids_in).logits.sum().backward()
    step.step()
    assert not torch.equal(before, table.detach())  # the generator's softmax moved the table


def test_uniform_corruption_replaces_only_the_live_masked_slots():
    import cross_corruption

    ids = np.arange(10, 26, dtype=np.int32).reshape(2, 8)
    batch = {"input_ids": tf.constant(ids), "input_mask": tf.constant([[1] * 8, [1] * 5 + [0] * 3]),
             "masked_lm_positions": tf.constant([[1, 3, 0], [2, 4, 0]]),
             "masked_lm_weights": tf.constant([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])}
    corrupted, replaced = cross_corruption.uniform_corruption(batch, 64, seed=0)
    changed = corrupted != ids
    assert not changed[:, [0, 5, 6, 7]].any() and not changed[0, [2, 4]].any()
    np.testing.assert_array_equal(replaced.astype(bool), changed)  # labelled iff replaced
    assert changed.sum() >= 3  # 4 slots drawn from 59 tokens


def test_testament_task_labels_by_the_first_new_testament_chapter(tmp_path):
    import gzip

    import testament_task

    corpus = tmp_path / "bible.txt.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        f.write("In the beginning God created the heavens and the earth.\nShort line.\n\n"
                "Moses spoke to all the people of Israel beyond the Jordan.\n\n"
                "The book of the genealogy of Jesus Christ, the son of David.\n\n"
                "Paul, a servant of Jesus Christ, called to be an apostle.\n")
    rows = testament_task.labelled_lines(str(corpus), min_words=8)
    assert [label for label, _ in rows] == ["old", "old", "new", "new"]  # short line dropped
    splits = [testament_task.split_of(f"line {i}") for i in range(2000)]  # 80 / 10 / 10
    assert abs(splits.count("train") / 2000 - 0.8) < 0.03
    assert abs(splits.count("dev") / 2000 - 0.1) < 0.02
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        f.write("In the beginning God created the heavens and the earth.\n")
    with pytest.raises(ValueError, match="bible.txt.gz: expected one chapter opening"):
        testament_task.labelled_lines(str(corpus), min_words=8)


def test_word_order_task_swaps_one_pair_of_neighbouring_words(tmp_path):
    import word_order_task

    rng = np.random.default_rng(0)
    words = "the cat , sat on 12 mats".split()
    for _ in range(50):
        out = word_order_task.swap_neighbours(words, max_position=5, rng=rng)
        moved = [i for i, (w, o) in enumerate(zip(words, out)) if w != o]
        assert sorted(out) == sorted(words) and len(moved) == 2  # one swap, same words
        assert moved[1] == moved[0] + 1 and moved[1] < 5  # neighbours, within max_position
        assert "," not in (words[i] for i in moved)  # punctuation never moves
    assert word_order_task.swap_neighbours(["好", "好", "。"], 5, rng) is None
    chars = word_order_task.swap_neighbours(list("很好用。"), 10, rng)
    assert chars[-1] == "。" and "".join(chars) != "很好用。"
    tsv = tmp_path / "reviews.tsv"
    tsv.write_text("pos\t房间很干净，服务也很好。\nneg\t太差\nneg\t房间很干净，价格贵\n",
                   encoding="utf-8")
    texts = word_order_task.source_texts([str(tsv)], 1, clauses=True, chars=True, min_units=4)
    assert texts == ["房间很干净，", "服务也很好。"]  # clauses of >= 4, each once
    rows = word_order_task.examples(texts, chars=True, max_position=24, seed=0)
    for (_, label, text), original in zip(rows, texts):
        assert (label == "written") == (text == original)
    labels = [r[1] for r in word_order_task.examples([f"w{i} x{i} y{i}" for i in range(400)],
                                                    False, 24, 0)]
    assert 0.4 < labels.count("swapped") / 400 < 0.6
    with pytest.raises(ValueError, match="reviews.tsv:1: expected a text in column 2"):
        word_order_task.source_texts([str(tsv)], 2, clauses=False, chars=True, min_units=1)


def test_word_order_probe_counts_order_and_scores_each_piece_masked(tmp_path):
    import word_order_probe

    model = saved_run(tmp_path / "run")
    words = [f"w{i}" for i in range(59)]
    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    (tmp_path / "corpus.txt").write_text("w1 w2 w3 w4 w5 w6 w7 w8\n" * 20)
    (tmp_path / "task.tsv").write_text("swapped\tw2 w1 w3 w4 w5 w6 w7 w8\n"
                                       + "written\tw1 w2 w3 w4 w5 w6 w7 w8\n" * 3)
    pairs = word_order_probe.text_pairs(str(tmp_path / "task.tsv"), False, 5, 24, 0)
    assert len(pairs) == 3 and all(o == "w1 w2 w3 w4 w5 w6 w7 w8" != s for o, s in pairs)
    row = [2, 6, 7, 8, 3]  # [CLS] w1 w2 w3 [SEP]
    one_at_a_time = 0.0
    for position in (1, 2, 3):
        ids = np.array([row], np.int32)
        ids[0, position] = 4  # [MASK]
        logits = model.generator(ids, np.ones_like(ids), np.zeros_like(ids),
                                 np.array([[position]], np.int32), training=False)
        one_at_a_time += float(tf.nn.log_softmax(logits[0, 0])[row[position]])
    assert word_order_probe.pseudo_log_likelihood(model, row, 8, 4) == pytest.approx(
        one_at_a_time, rel=1e-5)
    table = next(v for v in model.embeddings.weights if "position_embeddings" in v.path)
    random_rows = word_order_probe.position_similarity(model)
    assert abs(random_rows["cos_1_apart"]) < 0.2  # fresh rows: unrelated
    i, f = np.arange(table.shape[0])[:, None], np.arange(table.shape[1] // 2)[None, :]
    angles = i / 10.0 ** (f / 4)  # sinusoids: neighbours alike, distant positions less
    table.assign(np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32))
    smooth = word_order_probe.position_similarity(model)
    assert smooth["cos_1_apart"] > 0.8 > smooth["cos_10_apart"]
    masked_lm = build_pretrainer(tiny_config(vocab_size=64).replace(pretrain={"objective": "mlm"}))
    mlm_scores = [word_order_probe.pseudo_log_likelihood(masked_lm, r, 8, 4)
                  for r in (row, [2, 7, 6, 8, 3])]  # a masked-LM run: its one network scores
    assert np.isfinite(mlm_scores).all() and mlm_scores[0] != mlm_scores[1]
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "experiments", "word_order_probe.py"),
         f"--run=r={tmp_path / 'run'}", f"--vocab_file={tmp_path / 'vocab.txt'}",
         f"--task_file={tmp_path / 'task.tsv'}", f"--corpus={tmp_path / 'corpus.txt'}",
         "--max_seq_length=16", f"--out={tmp_path / 'probe'}"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    with open(tmp_path / "probe.json") as f:
        result = json.load(f)
    assert result["pairs"] == 3
    assert result["prefers_original"]["bigram_counts"] == 1.0  # the counted order wins
    assert set(result["prefers_original"]) == {"bigram_counts", "r_discriminator",
                                               "r_generator"}
    assert set(result["position_embeddings"]["r"]) == {"cos_1_apart", "cos_10_apart"}
    assert result["unigram_entropy_nats"] == pytest.approx(math.log(8), abs=1e-3)


def test_zh_ner_reads_held_out_metrics_from_a_pretraining_log(tmp_path):
    log = tmp_path / "pretrain.log"
    log.write_text(
        "16:51:12 step 500/1500  loss 25.051  auc 0.627\n"
        "16:51:14 eval at step 500: loss 25.29  mlm_loss 5.743  disc_auc 0.5743  "
        "disc_base_ratio 0.9767\n"
        "16:55:02 eval at step 1500: loss 24.1  mlm_loss 5.5  disc_auc 0.61  "
        "disc_base_ratio 0.95\n")
    evals = zh_ner.eval_lines(log)
    assert list(evals) == ["500", "1500"]
    assert evals["500"] == {"loss": 25.29, "mlm_loss": 5.743, "disc_auc": 0.5743,
                            "disc_base_ratio": 0.9767}
    report = {"date": "d", "cpu": "c", "cores": 2, "commands": {"pretrain": "python x"},
              "pretraining_eval": evals,
              "ner": {"random": {"median": {"f1": 0.5, "test_f1": 0.4},
                                 "seeds": {"0": {"f1": 0.5}, "1": {"f1": 0.6}}}}}
    text = zh_ner.markdown(report)
    assert "held out at step 1500: loss 24.100, mlm_loss 5.500" in text
    assert "| random | 0.500 | 0.500 / 0.600 | 0.400 |" in text


def test_linear_probe_reads_small_features():
    """Word-embedding means are ~0.01 in size: the probe must still find a label they carry
    (an unscaled logistic regression predicts the majority class on them)."""
    rng = np.random.default_rng(0)
    y = (rng.random(1500) < 0.55).astype(np.int32)  # [N]
    x = 0.005 * rng.normal(size=(1500, 16))  # [N, D]
    x[:, 0] += 0.01 * (2 * y - 1)  # the label, one unit, at the features' own scale
    majority = max(y[1000:].mean(), 1 - y[1000:].mean())
    accuracy = encoder_probe.linear_probe(x, y)
    assert accuracy > 0.9 and accuracy > majority + 0.3, (accuracy, majority)


def test_real_weights_reads_run_time_and_defaults_from_either_log_format(tmp_path):
    """run_finetuning's logs are "HH:MM:SS message" lines; older drivers wrote absl's
    "I1201 HH:MM:SS.ffffff file:line] message": the real-weights report reads both."""
    import real_weights

    ours = ("02:15:19 model shape from init/config.json\n"
            "W0000 00:00:1796175205.2 cuda_platform.cc:52] failed call to cuInit\n"
            "02:15:19 fine-tuning defaults of the nearest published size, small (...): "
            "learning_rate 0.0003\n"
            "02:31:49 generic over 1 seed(s): median accuracy 0.8551\n")
    absl = ("I1201 10:00:00.500000 140 run_finetuning.py:170] fine-tuning defaults of the "
            "nearest published size, small\n"
            "W0000 00:00:1796175205.2 cuda_platform.cc:52] failed call to cuInit\n"
            "I1201 10:18:24.500000 140 finetuning.py:300] done\n")
    for text, seconds in ((ours, 16 * 60 + 30), (absl, 18 * 60 + 24)):
        record = real_weights.run_record(text)
        assert record["seconds"] == seconds
        assert record["defaults"].startswith("fine-tuning defaults of the nearest published")
    with pytest.raises(ValueError, match="no timed lines"):
        real_weights.log_seconds("W0000 00:00:1796175205.2 cuda_platform.cc:52] only C++\n")
