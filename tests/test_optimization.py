"""Optimizer and schedule: the paper's formulas, checked against a NumPy reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.optimization import AdamWeightDecay, WarmupLinearDecay


def test_schedule_is_warmup_times_linear_decay():
    sched = WarmupLinearDecay(1e-3, total_steps=100, warmup_steps=10)
    for step in (0, 1, 5, 10, 50, 99, 100, 150):
        expected = 1e-3 * max(0.0, 1 - min(step, 100) / 100) * min(1.0, step / 10)
        assert float(sched(step)) == pytest.approx(expected, rel=1e-6, abs=1e-12)  # float32


def _reference(w, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-6, bias_correction=False):
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh, vh = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if bias_correction else (m, v)
        w = w - lr * (mh / (np.sqrt(vh) + eps) + wd * w)
    return w


@pytest.mark.parametrize("bias_correction", [False, True])
def test_matches_numpy_reference_and_skips_decay_on_layer_norm_and_bias(bias_correction):
    rng = np.random.default_rng(0)
    dense = keras.layers.Dense(3, name="dense")
    norm = keras.layers.LayerNormalization(name="layer_norm")
    dense.build((None, 4))
    norm.build((None, 3))
    variables = [dense.kernel, dense.bias, norm.gamma, norm.beta]
    # Drawn here, not added to Keras' unseeded initial values: the same numbers on every run.
    start = [rng.normal(size=v.shape).astype(np.float32) for v in variables]
    for v, s in zip(variables, start):
        v.assign(s)
    # Gradients from 1e-6 to ~1 in size: where eps sits in the update shows on the small ones.
    grads = [[(rng.normal(size=v.shape) * 10.0 ** rng.uniform(-6, 0, v.shape)).astype(np.float32)
              for v in variables] for _ in range(5)]
    opt = AdamWeightDecay(0.01, weight_decay=0.1, bias_correction=bias_correction)
    opt.build(variables)
    for g in grads:
        opt.apply_gradients(zip([tf.constant(x) for x in g], variables))
    assert [opt.decays(v) for v in variables] == [True, False, False, False]
    for i, v in enumerate(variables):
        wd = 0.1 if i == 0 else 0.0
        expected = _reference(start[i].astype(np.float64), [g[i] for g in grads], 0.01, wd,
                              bias_correction=bias_correction)
        np.testing.assert_allclose(v.numpy(), expected, rtol=2e-5, atol=2e-6)


def test_no_bias_correction_first_step_is_not_lr_sized():
    """Without bias correction the first update is lr * 0.1 g / (sqrt(0.001) |g|) ~ 3.16 lr."""
    var = keras.Variable(np.zeros(1, np.float32), name="bias")
    opt = AdamWeightDecay(1e-3, weight_decay=0.0)
    opt.build([var])
    opt.apply_gradients([(tf.constant([2.0]), var)])
    assert float(var.numpy()[0]) == pytest.approx(-1e-3 * 0.1 / np.sqrt(0.001), rel=1e-3)


def test_optimizer_config_round_trip():
    opt = AdamWeightDecay(1e-3, weight_decay=0.02, bias_correction=True,
                          aggregate_gradients=False)
    clone = AdamWeightDecay.from_config(opt.get_config())
    assert (clone.decay_rate, clone.bias_correction, clone.aggregate_gradients) == (
        0.02, True, False)


@pytest.fixture
def float16_policy():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def _float16_step(initial_scale):
    from helpers import CLS, MASK, SEP, packed_batch, tiny_config

    from electra_tf import optimization
    from electra_tf.data import masking
    from electra_tf.models import build_pretrainer
    from electra_tf.training import PretrainStep

    cfg = tiny_config()
    raw = packed_batch(8, 32, cfg.model.vocab_size)
    batch = masking.mask_batch(raw, tf.constant([0, 1]), mask_prob=0.15,
                               num_predictions=cfg.pretrain.num_predictions, mask_id=MASK,
                               special_ids=(CLS, SEP, MASK))
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    model = build_pretrainer(cfg)
    opt = optimization.pretraining_optimizer(1e-3, 100, 0)
    step = PretrainStep(model, opt, cfg.pretrain, strategy)
    step.loss_scale.scale.assign(initial_scale)
    return model, step, iter(tf.data.Dataset.from_tensors(batch).repeat())


def test_float16_overflow_skips_the_update_and_halves_the_scale(float16_policy):
    model, step, it = _float16_step(2.0 ** 40)  # far beyond float16's 65504: gradients overflow
    before = [v.numpy() for v in model.trainable_variables]
    step.train(it, tf.constant(1))
    assert not bool(step.loss_scale.finite.numpy())
    assert float(step.loss_scale.scale.numpy()) == 2.0 ** 39
    for b, v in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())  # weights untouched
    slots = [v for v in step.optimizer.variables if "iteration" not in v.path
             and "learning_rate" not in v.path]
    assert all(not np.any(s.numpy()) for s in slots)  # moments untouched (still zero)


def test_float16_training_with_loss_scaling_learns(float16_policy):
    model, step, it = _float16_step(2.0 ** 15)
    step.loss_scale.growth_interval = 3
    losses, finite = [], []
    for _ in range(10):
        losses.append(float(step.train(it, tf.constant(3))["loss"]) / 3)
        finite.append(bool(step.loss_scale.finite.numpy()))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] - 1.0
    # the scale grows every 3 finite steps until the gradients overflow, then halves: some
    # steps overflow by design (which ones depends on rounding), most must not
    assert sum(finite) >= 6, finite
    assert all(np.isfinite(v.numpy()).all() for v in model.trainable_variables)
    assert model.discriminator.encoder.blocks[0].query.kernel.dtype == "float32"
