"""SavedModel export: a fresh process reproduces the in-memory model on raw strings; the
raw-text signatures tokenize exactly as the data builder and fine-tuning do; bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import ZH_TEXTS, tiny_config, write_vocab, zh_vocab

from electra_tf import checkpoints, convert, export, tokenization
from electra_tf.data import features as feats
from electra_tf.data import packing
from electra_tf.data.tasks import Example
from electra_tf.heads import build_task_model
from electra_tf.models import build_pretrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTH = 32
LABELS = ["negative", "neutral", "positive"]
WORDS = ["the", "quick", "brown", "fox", "cafe", "deja", "vu", "naive", "emoji", "and",
         "long", "text", "##s", "!", ".", ",", "漢", "字", "🙂"]
TEXTS = ["The quick brown fox!", "", "Café déjà vu, naïve.", "emoji 🙂 and 🚀 漢字",
         " ".join(["the quick brown fox"] * 20),  # 80 words: truncated to L - 2 pieces
         "UNKNOWN texts", "   "]
PAIRS = ["fox", "the quick brown fox " * 10, "", "naïve 🙂", "texts", "", "cafe"]




@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    vocab = write_vocab(d, WORDS)
    model = build_task_model(tiny_config(vocab_size=vocab.size).model, "classification", 3)
    for v in model.weights:  # a "fine-tuned" head and non-trivial norms
        v.assign(v + np.random.default_rng(len(v.path)).normal(0, 0.05, v.shape))
    diffs = export.export(model, vocab, str(d / "saved"), LENGTH, label_names=LABELS)
    return model, vocab, str(d / "saved"), diffs


RELOAD = """
import sys, json
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer's custom ops)
model = tf.saved_model.load(sys.argv[1])
texts, pairs = json.loads(sys.argv[2]), json.loads(sys.argv[3])
text, pair = tf.constant(texts), tf.constant(pairs)
out = {}
for name, kwargs in (("single", {"text": text}), ("pair", {"text": text, "text_pair": pair})):
    signature = model.signatures["serving_default" if name == "single" else "serving_pair"]
    for key, value in signature(**kwargs).items():
        out[f"{name}/{key}"] = value.numpy()
    tok = model.signatures["tokenize" if name == "single" else "tokenize_pair"](**kwargs)
    for key, value in tok.items():
        out[f"{name}/{key}"] = value.numpy()
np.savez(sys.argv[4], **out)
"""


@pytest.fixture(scope="module")
def fresh_outputs(classifier, tmp_path_factory):
    _, _, path, _ = classifier
    out = str(tmp_path_factory.mktemp("fresh") / "out.npz")
    result = subprocess.run([sys.executable, "-c", RELOAD, path, json.dumps(TEXTS),
                             json.dumps(PAIRS), out], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(out, allow_pickle=True))


def reference(model, vocab, pairs: bool):
    """Fine-tuning's own featurization + the in-memory model, eagerly."""
    examples = [Example((t, p) if pairs else (t,)) for t, p in zip(TEXTS, PAIRS)]
    encoded = feats.encode_sentences(examples, tokenization.WordPieceTokenizer(vocab), LENGTH,
                                     "classification", with_labels=False)
    batch = {k: tf.constant(v) for k, v in encoded.features.items()}
    return encoded.features, model(batch, training=False)["logits"].numpy()


@pytest.mark.parametrize("mode", ["single", "pair"])
def test_fresh_process_reproduces_the_model_on_raw_strings(classifier, fresh_outputs, mode):
    model, vocab, _, diffs = classifier
    assert all(d <= export.TOLERANCE for d in diffs.values())  # the export's own check
    features, logits = reference(model, vocab, mode == "pair")
    for key in ("input_ids", "input_mask", "segment_ids"):  # tokenized as fine-tuning does
        np.testing.assert_array_equal(fresh_outputs[f"{mode}/{key}"], features[key])
    np.testing.assert_allclose(fresh_outputs[f"{mode}/logits"], logits, atol=1e-5, rtol=0)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(fresh_outputs[f"{mode}/probabilities"], probabilities,
                               atol=1e-5, rtol=0)
    names = [s.decode() for s in fresh_outputs[f"{mode}/label"]]
    assert names == [LABELS[i] for i in logits.argmax(-1)]
    assert fresh_outputs[f"{mode}/label_names"].shape == (len(TEXTS), 3)
    assert [s.decode() for s in fresh_outputs[f"{mode}/label_names"][0]] == LABELS
    assert np.ptp(logits, axis=0).max() > 1e-3  # different texts, different outputs


def test_edge_texts_tokenize_as_expected(fresh_outputs, classifier):
    _, vocab, _, _ = classifier
    ids = fresh_outputs["single/input_ids"]
    mask = fresh_outputs["single/input_mask"]
    assert list(ids[1, :3]) == [vocab.cls_id, vocab.sep_id, vocab.pad_id]  # empty string
    assert list(ids[2, 1:8]) == [vocab.id(w) for w in ("cafe", "deja", "vu", ",", "naive",
                                                       ".")] + [vocab.sep_id]
    assert list(ids[3, 1:7]) == [vocab.id("emoji"), vocab.id("🙂"), vocab.id("and"),
                                 vocab.unk_id, vocab.id("漢"), vocab.id("字")]
    assert mask[4].sum() == LENGTH and ids[4, -1] == vocab.sep_id  # truncated to L
    assert list(ids[5, 1:4]) == [vocab.unk_id, vocab.id("text"), vocab.id("##s")]
    pair = fresh_outputs["pair/input_ids"]
    assert mask[0].sum() == 7 and fresh_outputs["pair/input_mask"][0].sum() == 9
    assert list(fresh_outputs["pair/segment_ids"][0, :9]) == [0] * 7 + [1] * 2
    assert pair[1].tolist().count(vocab.sep_id) == 2  # "" then a long second text: still 2


def test_saved_model_carries_vocab_asset_labels_and_info(classifier):
    _, vocab, path, _ = classifier
    asset = open(os.path.join(path, "assets", "vocab.txt"), encoding="utf-8").read()
    assert asset.splitlines() == list(vocab.tokens)
    info = export.read_info(path)
    assert info["kind"] == "classification" and info["label_names"] == LABELS
    assert info["max_seq_length"] == LENGTH and info["lower_case"] is True
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "serving_pair", "serving_ids",
                                      "tokenize", "tokenize_pair"}


def test_raw_text_tokenizes_exactly_as_the_data_builder(shared_dir, tmp_path):
    """Real text (accents, punctuation, CJK, long lines) and the BERT vocabulary."""
    vocab = tokenization.load_vocab(str(shared_dir / "data" / "vocab" / "bert-base-uncased.txt"))
    lines = []
    for name in ("web.txt", "gcide.txt", "fortune.txt"):
        path = str(shared_dir / "data" / "corpus" / name)
        lines += [line for line in tokenization.read_lines(path) if line.strip()][:100]
    lines += [" ".join(lines[i:i + 12]) for i in range(0, 120, 12)] + TEXTS  # long ones too
    model = build_pretrainer(tiny_config(vocab_size=vocab.size, max_position_embeddings=128))
    export.export(model, vocab, str(tmp_path / "enc"), 128, check_texts=lines[:8])
    loaded = tf.saved_model.load(str(tmp_path / "enc"))
    got = loaded.signatures["tokenize"](text=tf.constant(lines))
    tokenizer = tokenization.WordPieceTokenizer(vocab)  # the builder's tokenizer and packing
    tokens = tokenizer.tokenize(tf.constant(lines))  # [lines, (pieces)]
    pieces = tokens.to_list()
    rows = packing.pack_documents(  # each line its own document: one single-segment row
        tokens.flat_values.numpy().astype(np.int32), tokens.row_splits.numpy(),
        np.arange(len(lines) + 1), 0, np.uint64(0), 128, vocab.cls_id, vocab.sep_id,
        vocab.pad_id)
    want = packing.features(*rows[:3])
    kept = np.array([len(p) > 0 for p in pieces])  # the builder skips lines without tokens
    assert 0 < (~kept).sum() < 5
    for key in ("input_ids", "input_mask", "segment_ids"):
        np.testing.assert_array_equal(got[key].numpy()[kept], want[key])
    np.testing.assert_array_equal(got["input_ids"].numpy()[~kept][:, :3],
                                  [[vocab.cls_id, vocab.sep_id, vocab.pad_id]] * (~kept).sum())
    assert sum(len(p) > 126 for p in pieces) > 0  # some lines were truncated
    half = len(lines) // 2  # pairs: as fine-tuning featurizes sentence pairs
    got = loaded.signatures["tokenize_pair"](text=tf.constant(lines[:half]),
                                             text_pair=tf.constant(lines[half:2 * half]))
    encoded = feats.encode_sentences([Example((a, b)) for a, b in zip(lines[:half],
                                                                      lines[half:2 * half])],
                                     tokenizer, 128, "classification", with_labels=False)
    for key in ("input_ids", "input_mask", "segment_ids"):
        np.testing.assert_array_equal(got[key].numpy(), encoded.features[key])


@pytest.mark.slow
def test_encoder_export_gives_sequence_and_cls(classifier, tmp_path):
    _, vocab, _, _ = classifier
    model = build_pretrainer(tiny_config(vocab_size=vocab.size))
    export.export(model, vocab, str(tmp_path / "enc"), LENGTH)
    loaded = tf.saved_model.load(str(tmp_path / "enc"))
    ids = loaded.signatures["tokenize"](text=tf.constant(TEXTS))
    out = loaded.signatures["serving_ids"](**ids)
    ours = model.discriminator(ids["input_ids"], ids["input_mask"], ids["segment_ids"],
                               training=False)["sequence_output"].numpy()
    real = ids["input_mask"].numpy() > 0
    np.testing.assert_allclose(out["sequence_output"].numpy()[real], ours[real], atol=1e-5,
                               rtol=0)
    np.testing.assert_allclose(out["cls_output"].numpy(), ours[:, 0], atol=1e-5, rtol=0)
    text_out = loaded.signatures["serving_default"](text=tf.constant(TEXTS))
    np.testing.assert_allclose(text_out["cls_output"].numpy(), ours[:, 0], atol=1e-5, rtol=0)


def test_tagging_export_marks_where_tags_are_read(classifier, tmp_path):
    """The pieces and the first piece of each word. (Every head's export, fine-tuned, is checked
    against its run's dev predictions in test_learning.py.)"""
    _, vocab, _, _ = classifier
    tagger = build_task_model(tiny_config(vocab_size=vocab.size).model, "tagging", 2)
    export.export(tagger, vocab, str(tmp_path / "tag"), LENGTH, label_names=["O", "B-X"])
    out = tf.saved_model.load(str(tmp_path / "tag")).signatures["serving_default"](
        text=tf.constant(["the texts cafe"]))
    assert [t.decode() for t in out["tokens"][0, :6].numpy()] == [
        "[CLS]", "the", "text", "##s", "cafe", "[SEP]"]
    assert out["word_start"][0, :6].numpy().tolist() == [0, 1, 1, 0, 1, 0]


@pytest.mark.parametrize("lower_case", [True, False])
def test_tagging_serves_the_entities_span_f1_reads_with_character_offsets(tmp_path, lower_case):
    """From raw text, every entity the served word tags make (metrics.chunks, as fine-tuning's
    span F1 reads them) comes with its character range in the text and that text; Chinese
    characters are one word each, Latin words several pieces, accents and full-width
    characters count one character."""
    from electra_tf import metrics

    vocab = zh_vocab(tmp_path, lower_case)
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    tagger = build_task_model(tiny_config(vocab_size=vocab.size).model, "tagging", len(names))
    rng = np.random.default_rng(0)
    for v in tagger.weights:  # a head that tags: large random logits
        v.assign(rng.normal(0, 1.0, v.shape).astype(np.float32))
    export.export(tagger, vocab, str(tmp_path / "tag"), LENGTH, lower_case=lower_case,
                  label_names=names, check_texts=ZH_TEXTS[:2])
    texts = ZH_TEXTS[:6] + ["".join(ZH_TEXTS[:3])]  # the last one truncated to L - 2 pieces
    out = tf.saved_model.load(str(tmp_path / "tag")).signatures["serving_default"](
        text=tf.constant(texts))
    tokenizer = tokenization.WordPieceTokenizer(vocab, lower_case)
    found = 0
    for i, text in enumerate(texts):
        ids, starts, ends = (t[0].numpy() for t in tokenizer.tokenize_with_offsets(
            tf.constant([text])))
        raw = text.encode("utf-8")
        chars = [len(raw[:b].decode("utf-8", "replace")) for b in range(len(raw) + 1)]
        words = [p for p in range(1, min(len(ids), LENGTH - 2) + 1)
                 if out["word_start"][i, p] == 1]
        tags = [out["labels"][i, p].numpy().decode() for p in words]
        want = sorted((chars[starts[words[a] - 1]],
                       chars[ends[(words[b + 1] - 1 if b + 1 < len(words)
                                   else min(len(ids), LENGTH - 2)) - 1]], kind)
                      for a, b, kind in metrics.chunks(tags))
        got = [(int(s), int(e), k.decode()) for s, e, k in zip(
            out["entity_start"][i].numpy(), out["entity_end"][i].numpy(),
            out["entity_type"][i].numpy()) if s >= 0]
        assert got == want, (text, tags)
        for (start, end, _), served in zip(got, out["entity_text"][i].numpy()):
            assert served.decode() == text[start:end]
        found += len(got)
    assert found >= 10  # the random head tags enough to exercise the rules


def test_served_span_is_the_one_fine_tuning_decodes():
    """answer_start / answer_end pick from the beam fine-tuning's evaluation decodes, by its
    score and rules (squad.decode): random logits of one-window contexts, as a SQuAD head
    masks them (only [CLS] and the context allowed)."""
    from electra_tf.data import squad
    from electra_tf.heads import answer_beam

    rng = np.random.default_rng(0)
    batch, length, k = 64, 48, 5
    first, last = rng.integers(2, 12, batch), rng.integers(16, length, batch)
    context = (np.arange(length) >= first[:, None]) & (np.arange(length) < last[:, None])
    mask_add = np.where(context, 0.0, -1000.0)
    mask_add[:, 0] = 0.0  # [CLS]: no answer
    start_logits = tf.constant(rng.normal(0, 2, (batch, length)) + mask_add, tf.float32)
    beam = answer_beam(start_logits, tf.math.top_k(start_logits, k).indices, tf.constant(
        rng.normal(0, 2, (batch, k, length)) + mask_add[:, None], tf.float32))
    start, end = export._best_span(beam, tf.constant(context))
    text = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[:length]  # char i = piece i
    windows = [squad.Window(i, {int(p): (int(p), int(p) + 1) for p in np.flatnonzero(row)},
                            {int(p) for p in np.flatnonzero(row)})
               for i, row in enumerate(context)]
    examples = [Example(("question", text), None, str(i)) for i in range(batch)]
    best, _, _ = squad.decode(examples, squad.SquadFeatures({}, windows, []),
                              {key: v.numpy() for key, v in beam.items()}, n_best_size=1,
                              max_answer_length=export.MAX_ANSWER_LENGTH)
    decoded = [(text.index(best[str(i)]), text.index(best[str(i)]) + len(best[str(i)]) - 1)
               for i in range(batch)]
    assert all(best.values())  # every row has a valid candidate
    assert list(zip(start.numpy().tolist(), end.numpy().tolist())) == decoded


def test_verification_tolerance_scales_with_the_value():
    """A trained SQuAD head's masked logits sit near -1000, where float32 values are 6e-5
    apart: graph and eager runs that round one step apart there are the same model (such an
    export used to be refused); near 1 the tolerance stays 1e-5."""
    masked = np.float32(-1000.0 + 7.3)
    step = np.nextafter(masked, np.float32(0.0))
    logits = tf.constant([[masked, 0.5]])
    assert export._compare("x", {"l": logits}, {"l": tf.constant([[step, 0.5]])}) == (
        pytest.approx(float(step) - float(masked)))
    with pytest.raises(export.ExportError, match=r"output 'l' differs by 2e-05 at 0.5 "):
        export._compare("x", {"l": logits}, {"l": tf.constant([[masked, 0.50002]])})
    with pytest.raises(export.ExportError, match="differs by nan"):
        export._compare("x", {"l": logits}, {"l": tf.constant([[masked, np.nan]])})


def test_bad_input_is_refused_with_a_clear_error(classifier, tmp_path):
    model, vocab, path, _ = classifier
    with pytest.raises(export.ExportError, match="exists; pass --overwrite"):
        export.export(model, vocab, path, LENGTH, label_names=LABELS)
    other = tokenization.Vocab(path="other/vocab.txt", tokens=vocab.tokens + ("extra",))
    with pytest.raises(tokenization.VocabError, match=r"other/vocab.txt has 25 tokens but the "
                                                      r"model's vocab_size is 24"):
        export.export(model, other, str(tmp_path / "x"), LENGTH, label_names=LABELS)
    with pytest.raises(export.ExportError, match="2 label names for a classification head "
                                                 "with 3 labels"):
        export.export(model, vocab, str(tmp_path / "x"), LENGTH, label_names=LABELS[:2])
    with pytest.raises(export.ExportError, match="max_seq_length=65: expected 3 to"):
        export.export(model, vocab, str(tmp_path / "x"), 65, label_names=LABELS)
    assert not (tmp_path / "x").exists()


def test_fine_tuning_output_dir_exports_with_the_tasks_labels(classifier, tmp_path):
    """The layout run_finetuning.py writes: finetune_config.json + seed_<n>/ckpt-N holding
    Checkpoint(model=TaskModel, optimizer=...)."""
    from electra_tf import optimization
    from electra_tf.data import tasks
    from electra_tf.finetuning import FinetuneConfig

    model, vocab, _, _ = classifier
    sst = build_task_model(model.model_config, "classification", 2)
    for v in sst.weights:
        v.assign(v + np.random.default_rng(len(v.path)).normal(0, 0.05, v.shape))
    cfg = FinetuneConfig(task=tasks.get_task("sst"), data_dir="unused", vocab_file=vocab.path,
                         output_dir=str(tmp_path), model=model.model_config,
                         max_seq_length=LENGTH)
    (tmp_path / "finetune_config.json").write_text(cfg.to_json())
    optimizer = optimization.finetuning_optimizer(sst.trainable_variables, 1e-3, 10, 1,
                                                  cfg.model.num_layers, 0.8, "official",
                                                  0.01, 1e-6)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=sst, optimizer=optimizer),
                               str(tmp_path / "seed_0"), 1).save(checkpoint_number=10)
    loaded, settings = export.load_finetuned(str(tmp_path))
    assert settings["label_names"] == ("0", "1") and settings["max_seq_length"] == LENGTH
    for a, b in zip(sst.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(export.ExportError, match="seed_3: no checkpoint"):
        export.load_finetuned(str(tmp_path), seed=3)


@pytest.mark.slow
def test_xla_compiled_export_matches(classifier, tmp_path):
    model, vocab, path, _ = classifier
    export.export(model, vocab, str(tmp_path / "xla"), LENGTH, label_names=LABELS,
                  jit_compile=True)
    assert export.read_info(str(tmp_path / "xla"))["jit_compile"] is True
    text = tf.constant(TEXTS)
    plain = tf.saved_model.load(path).signatures["serving_default"](text=text)
    xla = tf.saved_model.load(str(tmp_path / "xla")).signatures["serving_default"](text=text)
    np.testing.assert_allclose(xla["logits"].numpy(), plain["logits"].numpy(), atol=1e-5,
                               rtol=0)


@pytest.mark.parametrize("lower_case", [True, False])
def test_raw_chinese_text_tokenizes_as_bert_tokenizer(tmp_path, lower_case):
    """The exported `tokenize` signature on Chinese text (full-width punctuation, digits and
    letters kept, control characters removed) gives transformers' BertTokenizer's ids."""
    transformers = pytest.importorskip("transformers")
    vocab = zh_vocab(tmp_path, lower_case)
    texts = ZH_TEXTS + ["".join(ZH_TEXTS)]  # the last one truncated to L - 2 pieces
    model = build_pretrainer(tiny_config(vocab_size=vocab.size))
    export.export(model, vocab, str(tmp_path / "enc"), LENGTH, lower_case=lower_case,
                  check_texts=texts[:2])
    got = tf.saved_model.load(str(tmp_path / "enc")).signatures["tokenize"](
        text=tf.constant(texts))["input_ids"].numpy()
    ref = transformers.BertTokenizer(vocab.path, do_lower_case=lower_case)
    want = ref(texts, max_length=LENGTH, truncation=True, padding="max_length")["input_ids"]
    assert ref.pad_token_id == vocab.pad_id and ref.cls_token_id == vocab.cls_id
    np.testing.assert_array_equal(got, want)
    assert vocab.id("，") in got[0]


def test_export_cli_takes_vocab_size_from_the_vocab_file_when_the_config_has_none(tmp_path):
    """An encoder export whose --config_json gives the shape but no vocab_size: the model's
    is --vocab_file's (as in pretraining and fine-tuning)."""
    vocab = write_vocab(tmp_path, WORDS)
    cfg = tiny_config(vocab_size=vocab.size)
    tf.train.Checkpoint(model=build_pretrainer(cfg)).write(str(tmp_path / "ckpt" / "model"))
    shape = cfg.to_dict()
    del shape["model"]["vocab_size"]
    (tmp_path / "shape.json").write_text(json.dumps(shape))
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "export_model.py"),
         f"--checkpoint={tmp_path / 'ckpt' / 'model'}", f"--config_json={tmp_path / 'shape.json'}",
         f"--vocab_file={vocab.path}", f"--max_seq_length={LENGTH}",
         f"--output_dir={tmp_path / 'serving'}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert export.read_info(str(tmp_path / "serving"))["vocab_size"] == vocab.size
    shape["model"]["vocab_size"] = 30522  # set, and not the checkpoint's: one clear line
    (tmp_path / "shape.json").write_text(json.dumps(shape))
    with pytest.raises(convert.ConversionError, match=r"model does not hold this model "
                       r"\(.*shape.json\): Received incompatible tensor with shape \(24, 16\)"):
        checkpoints.load_pretrainer(str(tmp_path / "ckpt" / "model"),
                                    str(tmp_path / "shape.json"), vocab.size)
