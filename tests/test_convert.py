"""Conversion: official TF1 checkpoints, Hugging Face directories, keras-hub, warm starts.

The TF1 checkpoint is written here with the official variable names spelled out by hand (not
derived from our name map), random values, the released layout (Small++: a full-size generator
with its own embeddings projection) at a tiny size, Adam slots and global_step.
"""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from helpers import packed_batch, tiny_config, write_vocab

from electra_tf import (
    checkpoints,
    convert,
    convert_hf,
    convert_keras_hub,
    convert_tf1,
    tokenization,
)
from electra_tf.models import build_pretrainer

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The released layout at a tiny size: E=16, H=32, generator 1.0 x H (so it projects too).
RELEASED = dict(vocab_size=100, generator_fraction=1.0, max_position_embeddings=64)
HEADS = 2  # not stored in any checkpoint shape: given to the importer


def official_shapes(cfg) -> dict[str, tuple]:
    """Official name -> shape for a pretraining checkpoint of the google-research/electra code."""
    m = cfg.model
    v, e = m.vocab_size, m.embedding_size
    shapes = {"electra/embeddings/word_embeddings": (v, e),
              "electra/embeddings/position_embeddings": (m.max_position_embeddings, e),
              "electra/embeddings/token_type_embeddings": (m.type_vocab_size, e),
              "electra/embeddings/LayerNorm/gamma": (e,),
              "electra/embeddings/LayerNorm/beta": (e,)}
    for scope, h in (("electra", m.hidden_size), ("generator", m.generator_hidden_size)):
        f = m.intermediate_size if scope == "electra" else 4 * h  # get_generator_config
        if h != e:
            shapes[f"{scope}/embeddings_project/kernel"] = (e, h)
            shapes[f"{scope}/embeddings_project/bias"] = (h,)
        for i in range(m.num_layers):
            p = f"{scope}/encoder/layer_{i}/"
            for dense, (n_in, n_out) in (("attention/self/query", (h, h)),
                                         ("attention/self/key", (h, h)),
                                         ("attention/self/value", (h, h)),
                                         ("attention/output/dense", (h, h)),
                                         ("intermediate/dense", (h, f)),
                                         ("output/dense", (f, h))):
                shapes[p + dense + "/kernel"] = (n_in, n_out)
                shapes[p + dense + "/bias"] = (n_out,)
            for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
                shapes[p + norm + "/gamma"] = (h,)
                shapes[p + norm + "/beta"] = (h,)
    h, hg = m.hidden_size, m.generator_hidden_size
    shapes.update({"discriminator_predictions/dense/kernel": (h, h),
                   "discriminator_predictions/dense/bias": (h,),
                   "discriminator_predictions/dense_1/kernel": (h, 1),
                   "discriminator_predictions/dense_1/bias": (1,),
                   "generator_predictions/dense/kernel": (hg, e),
                   "generator_predictions/dense/bias": (e,),
                   "generator_predictions/LayerNorm/gamma": (e,),
                   "generator_predictions/LayerNorm/beta": (e,),
                   "generator_predictions/output_bias": (v,)})
    return shapes


def write_official(prefix, values: dict, slots: bool = True) -> str:
    """A tf.compat.v1 Saver checkpoint with these names (+ adam_m/adam_v slots, global_step)."""
    with tf.Graph().as_default():
        variables = {}
        for name, value in values.items():
            variables[name] = tf.compat.v1.get_variable(name, value.shape, tf.float32)
            if slots:
                for slot in ("adam_m", "adam_v"):
                    variables[f"{name}/{slot}"] = tf.compat.v1.get_variable(
                        f"{name}/{slot}", value.shape, tf.float32)
        step = tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for name, value in values.items():
                variables[name].load(value, sess)
            step.load(123, sess)
            return saver.save(sess, str(prefix), write_meta_graph=False)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    cfg = tiny_config(**RELEASED)
    rng = np.random.default_rng(0)
    values = {n: rng.normal(size=s).astype(np.float32) for n, s in official_shapes(cfg).items()}
    values["electra/not_in_any_map"] = np.ones(3, np.float32)  # must be reported
    prefix = write_official(tmp_path_factory.mktemp("tf1") / "model.ckpt", values)
    return cfg, values, prefix


@pytest.fixture(scope="module")
def imported(official):
    _, _, prefix = official
    return convert_tf1.import_tf1_checkpoint(prefix, num_heads=HEADS)


def test_tf1_import_builds_the_released_config(official, imported):
    cfg, _, _ = official
    model, _ = imported
    assert model.config.model == cfg.model  # incl. generator_fraction 1.0 (released Small++)
    assert model.config.model.generator_hidden_size == 32


def test_tf1_import_puts_every_tensor_where_the_map_says(official, imported):
    _, values, _ = official
    model, report = imported
    ours = convert.pretrainer_variables(model)
    mapped = {convert.tf1_name(name) for name in ours}
    assert mapped == set(values) - {"electra/not_in_any_map"}  # the map covers every name
    for name, variable in ours.items():
        np.testing.assert_array_equal(variable.numpy(), values[convert.tf1_name(name)])
    # A few spelled out, through the model's structure rather than the map:
    block = model.generator.encoder.blocks[1]
    np.testing.assert_array_equal(
        block.key.kernel.numpy(), values["generator/encoder/layer_1/attention/self/key/kernel"])
    np.testing.assert_array_equal(model.discriminator.head.logits.kernel.numpy(),
                                  values["discriminator_predictions/dense_1/kernel"])
    np.testing.assert_array_equal(model.generator.head.output_bias.numpy(),
                                  values["generator_predictions/output_bias"])
    np.testing.assert_array_equal(model.generator.encoder.embeddings_project.kernel.numpy(),
                                  values["generator/embeddings_project/kernel"])
    assert model.generator.encoder.embeddings is model.discriminator.encoder.embeddings
    assert report.loaded == len(values) - 1 and report.generator_loaded
    assert report.skipped == 2 * len(values) + 1  # adam_m, adam_v per variable; global_step
    assert report.unmatched == ("electra/not_in_any_map",)
    assert "1 unmatched: electra/not_in_any_map" in report.summary()


def test_tf1_round_trip_is_exact(imported, tmp_path):
    model, _ = imported
    prefix = convert_tf1.write_tf1_checkpoint(model, str(tmp_path / "out.ckpt"))
    again, report = convert_tf1.import_tf1_checkpoint(prefix, num_heads=HEADS)
    assert report.unmatched == () and again.config == model.config
    for a, b in zip(convert.pretrainer_variables(model).values(),
                    convert.pretrainer_variables(again).values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_tf1_quarter_generator_and_discriminator_only(tmp_path):
    cfg = tiny_config(generator_fraction=0.25, hidden_size=64, intermediate_size=128)
    model = build_pretrainer(cfg)
    prefix = convert_tf1.write_tf1_checkpoint(model, str(tmp_path / "q.ckpt"))
    again, _ = convert_tf1.import_tf1_checkpoint(str(tmp_path), num_heads=2)  # a directory
    assert again.config.model == cfg.model
    disc_only = {k: v for k, v in convert_tf1.read_tf1_checkpoint(prefix)[0].items()
                 if not k.startswith(("generator", "generator_predictions"))}
    path = write_official(tmp_path / "d" / "disc.ckpt", disc_only, slots=False)
    other = build_pretrainer(cfg)
    report = convert_tf1.load_tf1_weights(other, path)
    assert not report.generator_loaded and report.unmatched == ()
    np.testing.assert_array_equal(other.discriminator.encoder.blocks[0].value.kernel.numpy(),
                                  model.discriminator.encoder.blocks[0].value.kernel.numpy())
    with pytest.raises(convert.ConversionError, match=r"missing 'generator/encoder/layer_0/"):
        convert_tf1.load_tf1_weights(other, path, require_generator=True)


def test_tf1_missing_or_misshaped_variables_are_named(official, tmp_path):
    cfg, values, _ = official
    model = build_pretrainer(cfg)
    missing = {k: v for k, v in values.items()
               if k != "electra/encoder/layer_1/attention/output/dense/bias"}
    path = write_official(tmp_path / "m" / "model.ckpt", missing, slots=False)
    with pytest.raises(convert.ConversionError,
                       match=r"missing 'electra/encoder/layer_1/attention/output/dense/bias' "
                             r"\(for our 'discriminator/layer_1/attention_output/bias'\)"):
        convert_tf1.load_tf1_weights(model, path)
    wrong = dict(values)
    wrong["generator_predictions/dense/kernel"] = np.zeros((32, 7), np.float32)
    path = write_official(tmp_path / "w" / "model.ckpt", wrong, slots=False)
    with pytest.raises(convert.ConversionError,
                       match=r"'generator_predictions/dense/kernel' has shape \(32, 7\), "
                             r"expected \(32, 16\)"):
        convert_tf1.load_tf1_weights(model, path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(convert.ConversionError, match="no checkpoint found"):
        convert_tf1.import_tf1_checkpoint(str(tmp_path / "empty"))
    with pytest.raises(convert.ConversionError, match="not a readable TF checkpoint"):
        convert_tf1.import_tf1_checkpoint(str(tmp_path / "nothing.ckpt"))


def test_tf1_checkpoint_without_every_shape_is_refused(tmp_path):
    path = write_official(tmp_path / "x.ckpt", {"bert/embeddings/word_embeddings":
                                                np.zeros((5, 4), np.float32)}, slots=False)
    with pytest.raises(convert.ConversionError,
                       match=r"missing 'bert/embeddings/position_embeddings' \(needed to infer"):
        convert_tf1.import_tf1_checkpoint(path)


def test_init_checkpoint_is_what_pretraining_and_fine_tuning_restore(imported, tmp_path):
    model, _ = imported
    prefix = checkpoints.save_init_checkpoint(model, str(tmp_path / "init"))
    saved = json.loads((tmp_path / "init" / "config.json").read_text())
    assert saved["model"]["generator_fraction"] == 1.0
    fresh = build_pretrainer(model.config)  # exactly as run_pretraining's warm start
    tf.train.Checkpoint(model=fresh).restore(prefix).expect_partial()
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    reread = checkpoints.load_pretrainer(str(tmp_path / "init"))
    np.testing.assert_array_equal(reread.embeddings.word_embeddings.numpy(),
                                  model.embeddings.word_embeddings.numpy())
    with pytest.raises(convert.ConversionError, match="exists; pass --overwrite"):
        checkpoints.save_init_checkpoint(model, str(tmp_path / "init"))


# --- Hugging Face -------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_export(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf")
    vocab = write_vocab(d)
    cfg = tiny_config(vocab_size=vocab.size)
    model = build_pretrainer(cfg)
    for v in model.weights:  # non-trivial biases and LayerNorms, so every entry matters
        if len(v.shape) == 1:
            v.assign(v + np.random.default_rng(len(v.path)).normal(0, 0.1, v.shape))
    paths = convert_hf.save_hf_directory(model, str(d / "out"), vocab)
    return model, vocab, paths


def test_hf_directory_loads_in_transformers_with_the_same_logits(hf_export):
    model, vocab, paths = hf_export
    disc = transformers.ElectraForPreTraining.from_pretrained(paths["discriminator"]).eval()
    gen = transformers.ElectraForMaskedLM.from_pretrained(paths["generator"]).eval()
    batch = packed_batch(3, 24, vocab.size, seed=2)
    ids, mask, seg = (batch[k] for k in ("input_ids", "input_mask", "segment_ids"))
    t = lambda x: torch.from_numpy(x.numpy().astype(np.int64))  # noqa: E731
    with torch.no_grad():
        ref_disc = disc(input_ids=t(ids), attention_mask=t(mask), token_type_ids=t(seg))
        ref_gen = gen(input_ids=t(ids), attention_mask=t(mask), token_type_ids=t(seg))
    real = mask.numpy() > 0
    ours = model.discriminator(ids, mask, seg, training=False)["disc_logits"].numpy()
    np.testing.assert_allclose(ours[real], ref_disc.logits.numpy()[real], atol=1e-4, rtol=0)
    positions = tf.constant([[1, 2, 5]] * 3, tf.int32)
    ours_gen = model.generator(ids, mask, seg, positions, training=False).numpy()
    np.testing.assert_allclose(ours_gen, ref_gen.logits.numpy()[:, [1, 2, 5]], atol=1e-4,
                               rtol=0)
    assert np.abs(ours[real]).max() > 1e-2
    tokenizer = transformers.AutoTokenizer.from_pretrained(paths["discriminator"])
    assert tokenizer("w1 W2, w3")["input_ids"] == [vocab.cls_id, 6, 7, vocab.id(","), 8,
                                                   vocab.sep_id]


def test_hf_directory_round_trip_is_exact(hf_export):
    model, _, paths = hf_export
    again, report = convert_hf.import_hf_directory(paths["discriminator"], paths["generator"])
    assert again.config.model == model.config.model
    assert report.generator_loaded and report.fresh == () and report.unmatched == ()
    for a, b in zip(convert.pretrainer_variables(model).values(),
                    convert.pretrainer_variables(again).values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_hf_bad_inputs_are_refused(hf_export, tmp_path):
    model, vocab, paths = hf_export
    with pytest.raises(convert.ConversionError, match="not empty; pass --overwrite"):
        convert_hf.save_hf_directory(model, paths["discriminator"].rsplit("/", 1)[0], vocab)
    small = tokenization.Vocab(path="small/vocab.txt", tokens=vocab.tokens[:-1])
    with pytest.raises(convert.ConversionError, match="has 206 tokens but the model's "
                                                      "vocab_size is 207"):
        convert_hf.save_hf_directory(model, str(tmp_path / "x"), small)
    config = json.loads(open(f"{paths['discriminator']}/config.json").read())
    with pytest.raises(convert.ConversionError, match="hidden_act 'gelu_new'"):
        convert_hf.config_from_hf({**config, "hidden_act": "gelu_new"})
    gen = json.loads(open(f"{paths['generator']}/config.json").read())
    with pytest.raises(convert.ConversionError, match=r"generator \(hidden, heads, FFN"):
        convert_hf.config_from_hf(config, {**gen, "intermediate_size": 10})
    with pytest.raises(convert.ConversionError, match="no config.json"):
        convert_hf.import_hf_directory(str(tmp_path))


def test_keras_hub_backbone_reproduces_our_sequence_output(hf_export, tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    model, vocab, _ = hf_export
    backbone = convert_keras_hub.keras_hub_backbone(model.discriminator)
    assert isinstance(backbone, keras_hub.models.ElectraBackbone)
    batch = packed_batch(3, 24, vocab.size, seed=3)
    inputs = {"token_ids": batch["input_ids"], "segment_ids": batch["segment_ids"],
              "padding_mask": batch["input_mask"]}
    ours = model.discriminator(batch["input_ids"], batch["input_mask"], batch["segment_ids"],
                               training=False)["sequence_output"].numpy()
    real = batch["input_mask"].numpy() > 0
    tanh = backbone(inputs, training=False)["sequence_output"].numpy()
    for i in range(model.config.model.num_layers):  # the same (exact) GELU as ours
        dense = backbone.get_layer(f"transformer_layer_{i}")._feedforward_intermediate_dense
        dense.activation = lambda x: keras.activations.gelu(x, approximate=False)
    exact = backbone(inputs, training=False)["sequence_output"].numpy()
    np.testing.assert_allclose(exact[real], ours[real], atol=1e-5, rtol=0)
    assert np.abs(tanh[real] - ours[real]).max() > 0  # the documented difference is real
    backbone.save_to_preset(str(tmp_path / "preset"))  # what convert_checkpoint.py writes
    reloaded = keras_hub.models.ElectraBackbone.from_preset(str(tmp_path / "preset"))
    again = reloaded(inputs, training=False)["sequence_output"].numpy()
    np.testing.assert_allclose(again[real], tanh[real], atol=1e-6, rtol=0)


# --- the command line, and the warm start it feeds ----------------------------------------------

def cli(script, *args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_cli_tf1_to_ours_warm_starts_run_pretraining_then_exports(tmp_path):
    from helpers import write_corpus

    from electra_tf.data import preprocess

    vocab = write_vocab(tmp_path)
    cfg = tiny_config(vocab_size=vocab.size, max_position_embeddings=32, generator_fraction=1.0)
    source = build_pretrainer(cfg)
    convert_tf1.write_tf1_checkpoint(source, str(tmp_path / "tf1" / "model.ckpt"))
    result = cli("convert_checkpoint.py", "--source=tf1", f"--input={tmp_path / 'tf1'}",
                 "--num_heads=2", f"--output_dir={tmp_path / 'init'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensors loaded" in result.stdout and "generator loaded" in result.stdout
    again = cli("convert_checkpoint.py", "--source=tf1", f"--input={tmp_path / 'tf1'}",
                "--num_heads=2", f"--output_dir={tmp_path / 'init'}")
    assert again.returncode == 2 and "error: " in again.stderr and "--overwrite" in again.stderr
    preprocess.build([str(write_corpus(tmp_path / "c.txt", 60))], vocab, str(tmp_path / "data"),
                     preprocess.BuildOptions(max_seq_length=32, num_shards=1))
    run_dir = tmp_path / "run"
    result = cli("run_pretraining.py", "--model_size=tiny",
                 f"--config_json={tmp_path / 'init' / 'config.json'}",
                 f"--init_checkpoint={tmp_path / 'init' / 'model.ckpt'}",
                 f"--vocab_file={vocab.path}",
                 f"--train_files={tmp_path / 'data' / 'pretrain_data*'}",
                 "--max_seq_length=32", "--batch_size=8", "--train_steps=1",
                 "--learning_rate=1e-9", "--warmup_steps=0", "--steps_per_loop=1",
                 "--log_every=1", "--save_every=1", f"--model_dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warm start" in result.stderr
    trained = checkpoints.load_pretrainer(str(run_dir))
    for (name, a), b in zip(convert.pretrainer_variables(source).items(),
                            convert.pretrainer_variables(trained).values()):
        assert np.abs(a.numpy() - b.numpy()).max() < 1e-6, name  # one step at lr 1e-9
    result = cli("export_model.py", f"--checkpoint={run_dir}", f"--vocab_file={vocab.path}",
                 "--max_seq_length=16", f"--output_dir={tmp_path / 'serving'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(encoder); reloaded and checked" in result.stdout
    result = cli("export_model.py", f"--checkpoint={run_dir}", f"--vocab_file={vocab.path}",
                 f"--output_dir={tmp_path / 'serving'}")
    assert result.returncode == 2 and "exists; pass --overwrite" in result.stderr
