"""BERT-family encoders and keras-hub presets as ELECTRA's discriminator; what the converters need.

TF1 BERT checkpoints are written here with the original google-research/bert names spelled out
by hand (not derived from our name map); transformers' BERT classes are built at a tiny size
with random weights and saved as users' directories are.
"""

import ast
import json
import pathlib
import sys

import numpy as np
import pytest
from helpers import packed_batch, tiny_config
from test_convert import write_official

from electra_tf import checkpoints, convert, convert_hf, convert_keras_hub, convert_tf1
from electra_tf.config import SIZES, ModelConfig, nearest_size
from electra_tf.models import build_pretrainer

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A tiny BERT: hidden 32 with 4 heads (8 per head: hidden / 64 would be wrong), 2 layers.
V, H, F, P, LAYERS, HEADS = 120, 32, 64, 40, 2, 4


def bert_tf1_values(rng, V: int = V) -> dict[str, np.ndarray]:  # noqa: N803
    """The original BERT checkpoint's names and shapes (bert/..., cls/...)."""
    shapes = {"bert/embeddings/word_embeddings": (V, H),
              "bert/embeddings/position_embeddings": (P, H),
              "bert/embeddings/token_type_embeddings": (2, H),
              "bert/embeddings/LayerNorm/gamma": (H,), "bert/embeddings/LayerNorm/beta": (H,),
              "bert/pooler/dense/kernel": (H, H), "bert/pooler/dense/bias": (H,),
              "cls/predictions/transform/dense/kernel": (H, H),
              "cls/predictions/transform/dense/bias": (H,),
              "cls/predictions/transform/LayerNorm/gamma": (H,),
              "cls/predictions/transform/LayerNorm/beta": (H,),
              "cls/predictions/output_bias": (V,),
              "cls/seq_relationship/output_weights": (2, H),
              "cls/seq_relationship/output_bias": (2,)}
    for i in range(LAYERS):
        p = f"bert/encoder/layer_{i}/"
        for dense, (n_in, n_out) in (("attention/self/query", (H, H)),
                                     ("attention/self/key", (H, H)),
                                     ("attention/self/value", (H, H)),
                                     ("attention/output/dense", (H, H)),
                                     ("intermediate/dense", (H, F)), ("output/dense", (F, H))):
            shapes[p + dense + "/kernel"] = (n_in, n_out)
            shapes[p + dense + "/bias"] = (n_out,)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            shapes[p + norm + "/gamma"] = (H,)
            shapes[p + norm + "/beta"] = (H,)
    return {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}


@pytest.fixture(scope="module")
def bert_tf1(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bert_tf1")
    values = bert_tf1_values(np.random.default_rng(0))
    prefix = write_official(directory / "bert_model.ckpt", values)  # with Adam slots
    (directory / "bert_config.json").write_text(json.dumps(
        {"hidden_size": H, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
         "intermediate_size": F, "vocab_size": V, "hidden_act": "gelu"}))
    return values, prefix


def test_tf1_bert_checkpoint_becomes_the_discriminator_encoder(bert_tf1):
    values, prefix = bert_tf1
    model, report = convert_tf1.import_tf1_checkpoint(prefix)
    m = model.config.model
    assert (m.vocab_size, m.embedding_size, m.hidden_size, m.num_layers, m.intermediate_size,
            m.max_position_embeddings) == (V, H, H, LAYERS, F, P)
    assert m.num_heads == HEADS  # from bert_config.json, not hidden / 64
    assert model.discriminator.encoder.embeddings_project is None  # E = H: no projection
    # the generator: the nearest size's fraction of the width, projecting from E itself
    assert m.generator_fraction == SIZES[nearest_size(m)].model.generator_fraction
    assert model.generator.encoder.embeddings_project is not None
    block = model.discriminator.encoder.blocks[1]
    np.testing.assert_array_equal(block.key.kernel.numpy(),
                                  values["bert/encoder/layer_1/attention/self/key/kernel"])
    np.testing.assert_array_equal(block.output_layer_norm.beta.numpy(),
                                  values["bert/encoder/layer_1/output/LayerNorm/beta"])
    np.testing.assert_array_equal(model.embeddings.word_embeddings.numpy(),
                                  values["bert/embeddings/word_embeddings"])
    for name, variable in convert.encoder_variables(model.discriminator).items():
        source = convert.tf1_name(name).replace("electra/", "bert/", 1)
        np.testing.assert_array_equal(variable.numpy(), values[source])
    assert report.unmatched == () and not report.generator_loaded
    assert set(report.ignored) == {n for n in values if n.startswith(("bert/pooler", "cls/"))}
    assert report.fresh == ("discriminator head", "generator")
    assert report.skipped == 2 * len(values) + 1  # Adam slots and global_step
    assert "initialized fresh: discriminator head, generator" in report.summary()
    # --num_heads still wins; an explicit generator fraction is used as given
    other, _ = convert_tf1.import_tf1_checkpoint(prefix, num_heads=2, generator_fraction=0.5)
    assert other.config.model.num_heads == 2
    assert other.config.model.generator_hidden_size == H // 2


def test_bert_conversion_is_what_warm_starts_and_fine_tuning_restore(bert_tf1, tmp_path):
    from electra_tf.checkpoints import initialize
    from electra_tf.heads import TaskModel

    _, prefix = bert_tf1
    model, _ = convert_tf1.import_tf1_checkpoint(prefix)
    saved = checkpoints.save_init_checkpoint(model, str(tmp_path / "init"))
    again = checkpoints.load_pretrainer(str(tmp_path / "init"))  # every variable present
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    task = TaskModel(model.config.model, "classification", num_labels=2)
    task.build()
    initialize(task, str(tmp_path / "init"))
    assert saved.endswith("model.ckpt")
    np.testing.assert_array_equal(task.discriminator.encoder.blocks[0].query.kernel.numpy(),
                                  model.discriminator.encoder.blocks[0].query.kernel.numpy())


@pytest.mark.slow
def test_cli_bert_to_ours_continues_with_electras_objective(tmp_path):
    import subprocess

    from helpers import write_corpus, write_vocab

    from electra_tf.data import preprocess

    vocab = write_vocab(tmp_path)
    values = bert_tf1_values(np.random.default_rng(2), vocab.size)
    write_official(tmp_path / "bert" / "bert_model.ckpt", {k: v * 0.1 for k, v in values.items()},
                   slots=False)
    (tmp_path / "bert" / "bert_config.json").write_text(json.dumps({"num_attention_heads": 4}))
    script = lambda name, *args: subprocess.run(  # noqa: E731
        [sys.executable, str(ROOT / name), *args], capture_output=True, text=True, timeout=600)
    result = script("convert_checkpoint.py", "--source=tf1", f"--input={tmp_path / 'bert'}",
                    f"--output_dir={tmp_path / 'init'}", "--generator_fraction=0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "initialized fresh: discriminator head, generator" in result.stdout
    assert "not part of ELECTRA, skipped: bert/pooler/dense/bias" in result.stdout
    preprocess.build([str(write_corpus(tmp_path / "c.txt", 40))], vocab, str(tmp_path / "data"),
                     preprocess.BuildOptions(max_seq_length=32, num_shards=1))
    run = tmp_path / "run"
    result = script("run_pretraining.py", f"--init_checkpoint={tmp_path / 'init'}",
                    f"--config_json={tmp_path / 'init' / 'config.json'}",
                    f"--vocab_file={vocab.path}", f"--train_files={tmp_path / 'data' / 'pre*'}",
                    "--max_seq_length=32", "--batch_size=8", "--train_steps=2",
                    "--warmup_steps=0", "--steps_per_loop=1", "--log_every=1",
                    f"--model_dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warm start (weights only)" in result.stderr
    assert "auc" in result.stderr and "sampled_acc" in result.stderr  # ELECTRA's metrics
    trained = checkpoints.load_pretrainer(str(run))
    assert trained.config.model.generator_hidden_size == H // 2
    first = trained.discriminator.encoder.blocks[0].query.kernel.numpy()
    source = 0.1 * values["bert/encoder/layer_0/attention/self/query/kernel"]
    assert np.abs(first - source).max() < 0.01  # the BERT weights, after two small steps


def test_tf1_checkpoint_of_another_model_is_refused(tmp_path):
    path = write_official(tmp_path / "x.ckpt", {"roberta/embeddings/word_embeddings":
                                                np.zeros((5, 4), np.float32)}, slots=False)
    with pytest.raises(convert.ConversionError, match="neither 'electra/embeddings/word_embed"
                                                      "dings' nor 'bert/embeddings/word_emb"):
        convert_tf1.import_tf1_checkpoint(path)


# --- what the converters need ------------------------------------------------------------------

def declared_requirements() -> set[str]:
    """install_requires of setup.py, as import names."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")
    requires = next(k.value for k in call.keywords if k.arg == "install_requires")
    names = {ast.literal_eval(e).split(">")[0].split("=")[0].split("<")[0]
             for e in requires.elts}
    return {n.replace("-", "_").replace("absl_py", "absl") for n in names}


def imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_converters_need_only_declared_dependencies():
    # torch: only for pytorch_model.bin, with a one-line message when it is absent
    optional = {"torch"}
    stdlib = set(sys.stdlib_module_names) | {"electra_tf"}
    for name in ("convert.py", "convert_hf.py", "convert_tf1.py", "convert_keras_hub.py"):
        third_party = imported_modules(ROOT / "electra_tf" / name) - stdlib - optional
        assert third_party <= declared_requirements(), (name, third_party)
    script = imported_modules(ROOT / "convert_checkpoint.py") - stdlib
    assert script <= declared_requirements()


def write_pooling(directory: pathlib.Path, *modes: str) -> None:
    """A sentence-transformers Pooling module's config.json with `modes` switched on."""
    directory.mkdir(parents=True, exist_ok=True)
    names = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
             "max": "pooling_mode_max_tokens", "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}
    (directory / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": H, **{v: k in modes for k, v in names.items()}}))


@pytest.mark.parametrize("modes,pooling,left_out", [
    (("mean",), "mean", ()), (("cls",), "cls", ()),
    (("max",), "cls", ("sentence-transformers Pooling (max: not one of ('cls', 'mean'); "
                       "fine-tuning reads [CLS]) module",)),
    (("cls", "mean"), "cls", ("sentence-transformers Pooling (cls+mean: not one of ('cls', "
                              "'mean'); fine-tuning reads [CLS]) module",))])
def test_a_sentence_transformers_pooling_module_sets_the_heads_pooling(tmp_path, modes, pooling,
                                                                        left_out):
    """all-MiniLM-style layouts were trained on the mean of the text: fine-tuning heads read
    what the Pooling module says when we can (cls, mean); otherwise [CLS], and the module is
    listed as left out."""
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"}]))
    write_pooling(tmp_path / "1_Pooling", *modes)
    directory, others, found = convert_hf.model_directory(str(tmp_path))
    assert (directory, found) == (str(tmp_path), pooling)
    assert others == (*left_out, "sentence-transformers Normalize module")
    (tmp_path / "1_Pooling" / "config.json").unlink()
    with pytest.raises(convert.ConversionError, match=r"1_Pooling/config.json: not found"):
        convert_hf.model_directory(str(tmp_path))


# --- transformers BERT directories -------------------------------------------------------------

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def hf_bert(kind: str):
    config = transformers.BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=LAYERS,
                                     num_attention_heads=HEADS, intermediate_size=F,
                                     max_position_embeddings=P, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    torch.manual_seed(1)
    model = getattr(transformers, kind)(config).eval()
    with torch.no_grad():  # non-trivial LayerNorms and biases, so every entry matters
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model


def save(model, directory: pathlib.Path, layout: str = "plain") -> None:
    """save_pretrained; "sharded": several safetensors files and their index; "bin": the older
    pytorch_model.bin layout (transformers 5 writes only safetensors itself)."""
    if layout != "bin":
        model.save_pretrained(str(directory), **({"max_shard_size": "40KB"}
                                                 if layout == "sharded" else {}))
        return
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(directory))
    torch.save(model.state_dict(), str(directory / "pytorch_model.bin"))


def base_outputs(model, batch) -> np.ndarray:
    base = getattr(model, "bert", model)
    t = lambda x: torch.from_numpy(x.numpy().astype(np.int64))  # noqa: E731
    with torch.no_grad():
        return base(input_ids=t(batch["input_ids"]), attention_mask=t(batch["input_mask"]),
                    token_type_ids=t(batch["segment_ids"])).last_hidden_state.numpy()


@pytest.mark.parametrize("kind,layout", [("BertModel", "plain"),
                                         ("BertForMaskedLM", "bin"),
                                         ("BertForPreTraining", "sharded"),
                                         ("BertModel", "sentence-transformers")])
def test_hf_bert_directory_matches_transformers_hidden_states(kind, layout, tmp_path):
    reference = hf_bert(kind)
    directory = tmp_path / "model"
    target = directory / "0_Transformer" if layout == "sentence-transformers" else directory
    save(reference, target, layout)
    written = {"bin": "pytorch_model.bin", "sharded": "model.safetensors.index.json"}
    assert (target / written.get(layout, "model.safetensors")).exists()
    if layout == "sentence-transformers":
        (directory / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "0_Transformer",
             "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.models.Pooling"}]))
        write_pooling(directory / "1_Pooling", "mean")
    model, report = convert_hf.import_hf_directory(str(directory))
    assert model.config.model.embedding_size == H and model.config.model.num_heads == HEADS
    batch = packed_batch(3, 24, V, seed=5)
    ours = model.discriminator(batch["input_ids"], batch["input_mask"], batch["segment_ids"],
                               training=False)["sequence_output"].numpy()
    real = batch["input_mask"].numpy() > 0
    np.testing.assert_allclose(ours[real], base_outputs(reference, batch)[real], atol=1e-4,
                               rtol=0)
    assert report.unmatched == () and report.fresh == ("discriminator head", "generator")
    heads = {"BertModel": {"pooler.dense.weight", "pooler.dense.bias"},
             "BertForMaskedLM": {"cls.predictions.bias", "cls.predictions.transform.dense.weight"},
             "BertForPreTraining": {"bert.pooler.dense.weight",
                                    "cls.seq_relationship.weight"}}[kind]
    assert heads <= set(report.ignored)
    assert model.config.model.pooling == ("mean" if layout == "sentence-transformers" else "cls")


def test_pytorch_weights_without_torch_stop_with_one_line(tmp_path, monkeypatch):
    save(hf_bert("BertModel"), tmp_path, "bin")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(convert.ConversionError,
                       match=r"pytorch_model.bin: PyTorch weights need torch to read \(pip "
                             r"install torch\), or save the model as model.safetensors"):
        convert_hf.read_hf_directory(str(tmp_path))


def test_half_precision_safetensors_are_read_as_their_values(tmp_path):
    from safetensors.torch import save_file

    values = torch.randn(3, 4)
    save_file({"a": values.to(torch.bfloat16), "b": values.to(torch.float16)},
              str(tmp_path / "w.safetensors"))
    state = convert_hf._read_safetensors(str(tmp_path / "w.safetensors"))
    np.testing.assert_array_equal(state["a"].astype(np.float32),
                                  values.to(torch.bfloat16).float().numpy())
    np.testing.assert_array_equal(state["b"].astype(np.float32),
                                  values.to(torch.float16).float().numpy())


def test_other_model_types_and_bert_generators_are_refused(tmp_path):
    config = hf_bert("BertModel").config.to_dict()
    with pytest.raises(convert.ConversionError, match="model_type 'roberta', expected 'electra' "
                                                      "or 'bert'"):
        convert_hf.config_from_hf({**config, "model_type": "roberta"})
    with pytest.raises(convert.ConversionError, match="a generator goes with an ELECTRA"):
        convert_hf.config_from_hf(config, config)


# --- keras-hub in ------------------------------------------------------------------------------

def test_keras_hub_electra_preset_round_trip(tmp_path):
    pytest.importorskip("keras_hub")
    cfg = tiny_config(vocab_size=V)
    source = build_pretrainer(cfg)
    for v in source.weights:  # non-trivial biases and LayerNorms
        if len(v.shape) == 1:
            v.assign(v + np.random.default_rng(len(v.path)).normal(0, 0.1, v.shape))
    convert_keras_hub.keras_hub_backbone(source.discriminator).save_to_preset(
        str(tmp_path / "preset"))
    model, report = convert_keras_hub.import_keras_hub_preset(str(tmp_path / "preset"), 0.5)
    assert model.config.model == cfg.model
    for (name, a), b in zip(convert.encoder_variables(source.discriminator).items(),
                            convert.encoder_variables(model.discriminator).values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert report.loaded == len(convert.encoder_variables(model.discriminator))
    assert report.fresh == ("discriminator head", "generator")
    assert any(name.startswith("pooled_dense") for name in report.ignored)


def test_keras_hub_bert_preset_matches_with_the_exact_gelu(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    backbone = keras_hub.models.BertBackbone(vocabulary_size=V, num_layers=LAYERS,
                                             num_heads=HEADS, hidden_dim=H, intermediate_dim=F,
                                             max_sequence_length=P)
    backbone.save_to_preset(str(tmp_path / "bert"))
    model, _ = convert_keras_hub.import_keras_hub_preset(str(tmp_path / "bert"))
    assert model.config.model.embedding_size == H and model.config.model.num_heads == HEADS
    for i in range(LAYERS):  # ours computes the exact GELU; keras-hub the tanh approximation
        dense = backbone.get_layer(f"transformer_layer_{i}")._feedforward_intermediate_dense
        dense.activation = lambda x: keras.activations.gelu(x, approximate=False)
    batch = packed_batch(2, 20, V, seed=6)
    theirs = backbone({"token_ids": batch["input_ids"], "segment_ids": batch["segment_ids"],
                       "padding_mask": batch["input_mask"]})["sequence_output"].numpy()
    ours = model.discriminator(batch["input_ids"], batch["input_mask"], batch["segment_ids"],
                               training=False)["sequence_output"].numpy()
    real = batch["input_mask"].numpy() > 0
    np.testing.assert_allclose(ours[real], theirs[real], atol=1e-5, rtol=0)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"class_name": "GPT2Backbone"}))
    with pytest.raises(convert.ConversionError, match="class_name 'GPT2Backbone', expected one"):
        convert_keras_hub.import_keras_hub_preset(str(tmp_path / "other"))


def test_nearest_size_of_real_shapes():
    for name, preset in SIZES.items():
        assert nearest_size(preset.model) == name
    shape = dict(vocab_size=30522, num_heads=12, intermediate_size=1536)
    assert nearest_size(ModelConfig(**shape, hidden_size=384, embedding_size=384,
                                    num_layers=6)) == "small"  # all-MiniLM-L6-v2
    assert nearest_size(ModelConfig(**shape, hidden_size=768, embedding_size=768,
                                    num_layers=12)) == "base"  # BERT-Base
    assert nearest_size(ModelConfig(**{**shape, "num_heads": 16}, hidden_size=1024,
                                    embedding_size=1024, num_layers=16)) == "large"
