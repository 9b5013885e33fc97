"""Task heads: output shapes and dtypes, config round trip, canonical names, SQuAD masking."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import packed_batch, tiny_config

from electra_tf import convert
from electra_tf.heads import TaskModel, answer_mask, build_task_model

B, L = 4, 16


@pytest.fixture(scope="module")
def batch():
    return packed_batch(B, L, 100, seed=3, min_len=8)


@pytest.fixture(scope="module")
def models():
    cfg = tiny_config().model
    return {
        "classification": build_task_model(cfg, "classification", num_labels=3),
        "regression": build_task_model(cfg, "regression"),
        "tagging": build_task_model(cfg, "tagging", num_labels=5),
        "squad": build_task_model(cfg, "squad", answerable=True, beam_size=4),
    }


def test_output_shapes_and_dtypes(models, batch):
    expected = {"classification": {"logits": (B, 3)}, "regression": {"predictions": (B,)},
                "tagging": {"logits": (B, L, 5)},
                "squad": {"start_logits": (B, L), "end_logits": (B, L),
                          "answerable_logits": (B,), "start_top_index": (B, 4),
                          "end_beam_logits": (B, 4, L)}}
    for head, model in models.items():
        out = model(batch, training=False)
        assert {k: tuple(v.shape) for k, v in out.items()} == expected[head], head
        for key, value in out.items():
            if key != "start_top_index":
                assert value.dtype == tf.float32, (head, key)


def test_inference_is_deterministic_and_training_drops_out(models, batch):
    model = models["classification"]
    a = model(batch, training=False)["logits"].numpy()
    np.testing.assert_array_equal(a, model(batch, training=False)["logits"].numpy())
    seed = tf.constant([1, 2])
    t1 = model(batch, training=True, seed=seed)["logits"].numpy()
    np.testing.assert_array_equal(t1, model(batch, training=True, seed=seed)["logits"].numpy())
    assert not np.allclose(t1, a)


def test_config_round_trip_gives_the_same_model(models, batch):
    for head, model in models.items():
        clone = TaskModel.from_config(model.get_config())
        clone.build()
        assert clone.get_config() == model.get_config()
        clone.set_weights(model.get_weights())
        for key, value in model(batch, training=False).items():
            np.testing.assert_allclose(clone(batch, training=False)[key].numpy(),
                                       value.numpy(), rtol=1e-6, atol=1e-6, err_msg=head)


def test_keras_serialization_round_trip(models):
    model = models["tagging"]
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(restored, TaskModel) and restored.get_config() == model.get_config()


def test_encoder_is_a_discriminator_with_canonical_names(models):
    model = models["classification"]
    names = convert.discriminator_variables(model.discriminator)
    assert "discriminator/layer_1/query/kernel" in names
    assert "embeddings/word_embeddings" in names
    trainable = {id(v) for v in model.trainable_variables}
    head = model.discriminator.head.weights
    assert head and not any(id(v) in trainable for v in head)  # RTD head: kept, frozen
    encoder = [v for k, v in names.items() if "discriminator_predictions" not in k]
    assert all(id(v) in trainable for v in encoder)
    assert all(id(v) in trainable for v in model.head_variables())
    assert len(model.trainable_variables) == len(encoder) + len(model.head_variables())


def test_gradients_reach_every_trainable_variable(models, batch):
    for head, model in models.items():
        feats = dict(batch)
        if head == "squad":
            feats["start_positions"] = tf.constant([0, 9, 10, 11])
        with tf.GradientTape() as tape:
            out = model(feats, training=True, seed=tf.constant([5, 6]))
            loss = sum(tf.reduce_sum(v) for k, v in out.items() if k != "start_top_index")
        grads = tape.gradient(loss, model.trainable_variables)
        missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
        assert not missing, (head, missing)


def test_squad_answers_only_in_context_or_cls(models, batch):
    mask = answer_mask(batch["input_mask"], batch["segment_ids"]).numpy()
    expected = batch["input_mask"].numpy() * batch["segment_ids"].numpy()
    expected[:, 0] = 1
    np.testing.assert_array_equal(mask, expected)
    out = models["squad"](batch, training=False)
    for key in ("start_logits", "end_logits"):
        logits = out[key].numpy()
        assert np.all(logits[mask == 0] < -500) and np.all(logits[mask == 1] > -500)
    # The beam's first row is conditioned on the best start, and is what end_logits reports.
    top = out["start_top_index"].numpy()
    np.testing.assert_array_equal(top[:, 0], out["start_logits"].numpy().argmax(-1))
    np.testing.assert_array_equal(out["end_logits"].numpy(), out["end_beam_logits"][:, 0])


def test_squad_training_conditions_end_on_the_gold_start(models, batch):
    model = models["squad"]
    feats = dict(batch, start_positions=tf.constant([0, 9, 10, 11]))
    gold = model(feats, training=True, seed=tf.constant([0, 0]))["end_logits"].numpy()
    other = dict(batch, start_positions=tf.constant([0, 10, 11, 12]))
    moved = model(other, training=True, seed=tf.constant([0, 0]))["end_logits"].numpy()
    np.testing.assert_array_equal(gold[0], moved[0])  # same start, same seed
    assert not np.allclose(gold[1:], moved[1:])


def test_bad_head_arguments():
    cfg = tiny_config().model
    with pytest.raises(ValueError, match="unknown head 'pooler'"):
        TaskModel(cfg, "pooler")
    with pytest.raises(ValueError, match="num_labels"):
        TaskModel(cfg, "classification", num_labels=1)
    with pytest.raises(ValueError, match="squad head only"):
        TaskModel(cfg, "classification", answerable=True)


@pytest.mark.parametrize("head", ["classification", "regression"])
def test_mean_pooling_reads_the_mean_of_the_real_tokens(models, batch, head):
    """pooling "mean" (a sentence-transformers checkpoint's): the head's dense layer sees the
    average of the encoder's vectors over input_mask, not [CLS]; the same weights with "cls"
    see position 0. Padding contributes nothing."""
    import dataclasses

    from electra_tf.errors import ConfigError

    cls_model = models[head]
    cfg = dataclasses.replace(cls_model.model_config, pooling="mean")
    mean_model = build_task_model(cfg, head, num_labels=3)
    mean_model.set_weights(cls_model.get_weights())
    sequence = cls_model.encoder(batch["input_ids"], batch["input_mask"], batch["segment_ids"],
                                 training=False).numpy()  # [B, L, H]
    mask = batch["input_mask"].numpy()[:, :, None].astype(np.float32)
    assert mask.min() == 0  # the batch has padding
    kernel, bias = (w.numpy() for w in cls_model.output_layer.weights)
    key = "logits" if head == "classification" else "predictions"
    for model, vector in ((mean_model, (sequence * mask).sum(1) / mask.sum(1)),
                          (cls_model, sequence[:, 0])):
        expected = (vector @ kernel + bias).reshape(model(batch, training=False)[key].shape)
        np.testing.assert_allclose(model(batch, training=False)[key].numpy(), expected,
                                   atol=1e-5, rtol=1e-5)
    assert TaskModel.from_config(mean_model.get_config()).model_config.pooling == "mean"
    with pytest.raises(ConfigError, match=r"config key 'pooling': expected one of \('cls', "
                                          r"'mean'\), got 'max'"):
        dataclasses.replace(cfg, pooling="max")
