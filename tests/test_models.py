"""Models and layers: shapes, tied embeddings, stop-gradient, initial loss, learning, configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CLS, MASK, SEP, packed_batch, tiny_config

from electra_tf import losses, optimization, sampling
from electra_tf.data import masking
from electra_tf.layers import DiscriminatorHead, Embeddings, MaskedLMHead, TransformerBlock
from electra_tf.models import Encoder, build_pretrainer


def masked(cfg, batch_size=8, seed=0):
    raw = packed_batch(batch_size, cfg.pretrain.max_seq_length, cfg.model.vocab_size, seed=seed)
    return masking.mask_batch(raw, tf.constant([0, seed]), mask_prob=cfg.pretrain.mask_prob,
                              num_predictions=cfg.pretrain.num_predictions, mask_id=MASK,
                              special_ids=(CLS, SEP, MASK))


@pytest.fixture(scope="module")
def model_and_batch():
    cfg = tiny_config()
    return cfg, build_pretrainer(cfg), masked(cfg)


def test_output_dict_shapes(model_and_batch):
    cfg, model, batch = model_and_batch
    out = model(batch, training=False, seed=tf.constant([1, 2]))
    b, n, length, v = 8, cfg.pretrain.num_predictions, cfg.pretrain.max_seq_length, 100
    assert out["mlm_logits"].shape == (b, n, v) and out["mlm_logits"].dtype == tf.float32
    assert out["sampled_ids"].shape == (b, n)
    assert out["corrupted_ids"].shape == (b, length)
    assert out["is_replaced"].shape == (b, length)
    assert out["disc_logits"].shape == (b, length) and out["disc_logits"].dtype == tf.float32


def test_corruption_and_labels_follow_the_samples(model_and_batch):
    _, model, batch = model_and_batch
    out = model(batch, training=False, seed=tf.constant([3, 4]))
    pos = batch["masked_lm_positions"].numpy()
    live = batch["masked_lm_weights"].numpy() > 0
    corrupted, labels = out["corrupted_ids"].numpy(), out["is_replaced"].numpy()
    sampled, original = out["sampled_ids"].numpy(), batch["masked_lm_ids"].numpy()
    expected_ids = batch["input_ids"].numpy().copy()
    expected_labels = np.zeros_like(labels)
    for b in range(len(pos)):
        for slot in np.flatnonzero(live[b]):
            expected_ids[b, pos[b, slot]] = sampled[b, slot]
            expected_labels[b, pos[b, slot]] = int(sampled[b, slot] != original[b, slot])
    np.testing.assert_array_equal(corrupted, expected_ids)
    np.testing.assert_array_equal(labels, expected_labels)  # a correct sample is "original"


def test_tied_embeddings_are_single_variables(model_and_batch):
    _, model, _ = model_and_batch
    assert model.generator.encoder.embeddings is model.discriminator.encoder.embeddings
    assert model.generator.head.embeddings is model.embeddings
    ids = [id(v) for v in model.trainable_variables]
    assert len(ids) == len(set(ids))
    tables = [v for v in model.weights if v.name == "word_embeddings"]
    assert len(tables) == 1
    # Generator has its own projection (E=16 -> Hg=16 here: none) and the discriminator its own.
    assert model.discriminator.encoder.embeddings_project is not None


def test_no_discriminator_gradient_reaches_the_generator(model_and_batch):
    cfg, model, batch = model_and_batch
    with tf.GradientTape() as tape:
        out = model(batch, training=True, seed=tf.constant([0, 1]))
        disc = losses.discriminator_loss(out["disc_logits"], out["is_replaced"],
                                         batch["input_mask"])
    gen_only = [v for v in model.generator.trainable_variables
                if not any(v is e for e in model.embeddings.trainable_variables)]
    grads = tape.gradient(disc, gen_only + model.embeddings.trainable_variables)
    assert all(g is None for g in grads[:len(gen_only)])
    assert all(g is not None for g in grads[len(gen_only):])  # shared embeddings do learn


def test_initial_loss_near_ln_v_plus_50_ln_2():
    cfg = tiny_config(vocab_size=1000, max_seq_length=64)
    # One fixed draw of the weights: the discriminator's Glorot-uniform logits layer gives all
    # tokens a common offset that moves the initial disc loss by up to ~0.03 between draws (x50
    # in the total: an unseeded run once landed 1.02 away). A vocabulary or label bug moves the
    # loss by far more than the bounds below.
    keras.utils.set_random_seed(0)
    model = build_pretrainer(cfg)
    batch = masked(cfg, batch_size=16, seed=1)
    out = model(batch, training=False, seed=tf.constant([0, 0]))
    parts = losses.pretraining_losses(out, batch, cfg.pretrain)
    expected = losses.expected_initial_loss(1000, cfg.pretrain)
    assert expected == pytest.approx(np.log(1000) + 50 * np.log(2))
    assert abs(float(parts["loss"]) - expected) < 1.0
    assert abs(float(parts["mlm_loss"]) - np.log(1000)) < 0.05
    assert abs(float(parts["disc_loss"]) - np.log(2)) < 0.02


@pytest.mark.slow
def test_training_on_one_batch_drives_both_losses_down():
    cfg = tiny_config()
    model = build_pretrainer(cfg)
    batch = masked(cfg, batch_size=16, seed=2)
    opt = optimization.pretraining_optimizer(1e-3, total_steps=300, warmup_steps=20)
    opt.build(model.trainable_variables)

    @tf.function
    def step(seed):
        with tf.GradientTape() as tape:
            out = model(batch, training=True, seed=seed)
            result = losses.pretraining_losses(out, batch, cfg.pretrain)
        grads = tape.gradient(result["loss"], model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return result

    history = [step(tf.constant([0, i])) for i in range(300)]
    first = {k: float(v) for k, v in history[0].items()}
    last = {k: np.mean([float(h[k]) for h in history[-20:]]) for k in first}
    assert last["mlm_loss"] < 0.6 * first["mlm_loss"]
    assert last["disc_loss"] < 0.5 * first["disc_loss"]


def test_sampling_follows_softmax_and_temperature():
    logits = tf.math.log(tf.constant([[[0.7, 0.2, 0.1]]]))
    logits = tf.tile(logits, [4000, 1, 1])  # [4000, 1, 3]
    draws = sampling.sample(logits, tf.constant([1, 2])).numpy().ravel()
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 4000, [0.7, 0.2, 0.1], atol=0.03)
    cold = sampling.sample(logits, tf.constant([1, 2]), temperature=0.05).numpy()
    assert (cold == 0).mean() > 0.99
    never = sampling.sample(logits, tf.constant([1, 2]),
                            disallow_ids=tf.zeros((4000, 1), tf.int32)).numpy()
    assert (never != 0).all()
    again = sampling.sample(logits, tf.constant([1, 2])).numpy().ravel()
    np.testing.assert_array_equal(draws, again)


@pytest.mark.parametrize("vocab, temperature", [(300, 1.0), (300, 0.7), (2 * sampling.BLOCK, 1.0)])
def test_sampling_draws_the_softmax_over_many_blocks(vocab, temperature):
    """The two-level inverse CDF draws softmax(logits / T) with the disallowed id removed:
    Pearson's chi-square of 200,000 draws against it stays within 5 standard deviations of
    its mean (a wrong block offset or a skipped word moves it by thousands), padding past the
    vocabulary and the disallowed id are never drawn."""
    logits = tf.random.stateless_normal([1, 1, vocab], [4, 4]) * 2.0
    disallowed = 5
    p = tf.nn.softmax(logits[0, 0] / temperature).numpy().astype(np.float64)
    p[disallowed] = 0.0
    p /= p.sum()
    tiled = tf.tile(logits, [400, 5, 1])  # [400, 5, V]
    counts = np.zeros(vocab)
    for k in range(100):
        ids = sampling.sample(tiled, tf.constant([k, 1]), temperature,
                              disallow_ids=tf.fill([400, 5], disallowed)).numpy().ravel()
        assert ids.min() >= 0 and ids.max() < vocab
        counts += np.bincount(ids, minlength=vocab)
    assert counts[disallowed] == 0
    n, dof = counts.sum(), vocab - 2
    chi2 = (((counts - n * p) ** 2) / np.where(p > 0, n * p, 1.0))[p > 0].sum()
    assert abs(chi2 - dof) < 5 * np.sqrt(2 * dof), chi2


def test_sampling_edges_of_the_cumulative_sum():
    # uniform 0 takes the first word with mass; a uniform that float rounding puts at the end
    # takes the last word with mass, never padding or a disallowed (zero-mass) word
    vocab = sampling.BLOCK + 7  # a full block and a partial one
    logits = tf.zeros([1, 3, vocab])
    last = vocab - 1
    uniform = tf.constant([[0.0, 1.0 - 2.0 ** -24, 1.0]])  # 1.0: past the end on purpose
    ids = sampling._inverse_cdf(logits, uniform, 1.0, tf.constant([[0, last, last]])).numpy()
    np.testing.assert_array_equal(ids, [[1, last - 1, last - 1]])


def test_sampling_is_the_same_however_the_batch_is_split():
    # a [4] seed numbers slots by their global example: two halves draw what the whole draws
    from electra_tf import rng

    logits = tf.random.stateless_normal([8, 5, 300], [1, 1]) * 3
    whole = sampling.sample(logits, rng.batch_seed(tf.constant([3, 9]), 0, 8))
    halves = [sampling.sample(logits[i:i + 4], rng.batch_seed(tf.constant([3, 9]), i, 4))
              for i in (0, 4)]
    np.testing.assert_array_equal(whole.numpy(), tf.concat(halves, 0).numpy())


def test_sampling_has_no_gradient():
    logits = tf.Variable(tf.random.normal([2, 3, 5]))
    with tf.GradientTape() as tape:
        ids = sampling.sample(logits, tf.constant([0, 0]))
        y = tf.reduce_sum(tf.cast(ids, tf.float32) * tf.reduce_sum(logits))
    assert tape.gradient(y, logits) is not None  # only through the explicit product
    with tf.GradientTape() as tape:
        z = tf.reduce_sum(tf.cast(sampling.sample(logits, tf.constant([0, 0])),
                                  tf.float32))
    assert tape.gradient(z, logits) is None


def _round_trip(layer, *args):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(*args)  # builds and runs
    return clone


def test_layers_config_round_trip():
    emb = Embeddings(50, 8, max_position_embeddings=16, dropout=0.2, name="embeddings")
    ids = tf.constant([[2, 7, 9, 3]])
    _round_trip(emb, ids, tf.zeros_like(ids))
    block = TransformerBlock(8, 2, 16, hidden_dropout=0.05, layer_norm_eps=1e-6)
    _round_trip(block, tf.zeros([1, 4, 8]), tf.zeros([1, 1, 1, 4]))
    _round_trip(DiscriminatorHead(8), tf.zeros([1, 4, 8]))
    head = MaskedLMHead(emb, layer_norm_eps=1e-5)
    clone = _round_trip(head, tf.zeros([1, 4, 6]), tf.constant([[1, 2]]))
    assert clone.embeddings.get_config() == emb.get_config()
    enc = Encoder(emb, hidden_size=12, num_layers=2, num_heads=3, intermediate_size=24)
    clone = _round_trip(enc, ids, tf.ones_like(ids), tf.zeros_like(ids))
    assert clone.embeddings_project is not None and len(clone.blocks) == 2


def test_block_rejects_bad_heads():
    with pytest.raises(ValueError, match="hidden_size=10 is not divisible by num_heads=3"):
        TransformerBlock(10, 3, 20)


def test_all_blocks_share_one_trace_and_compute_the_keras_reference():
    """The blocks run one shared tf.function (one trace for all layers of a shape), and it
    computes what the block's own Keras sublayers (Dense, LayerNormalization) compute."""
    from electra_tf.layers import _block_function

    enc = Encoder(Embeddings(97, 16, 16, 8), 16, 3, 2, 32)
    ids = tf.constant([[1, 5, 9, 2, 0, 0], [1, 7, 3, 8, 4, 2]])
    mask = tf.cast(ids > 0, tf.int32)
    before = _block_function.experimental_get_tracing_count()
    enc(ids, mask, tf.zeros_like(ids), training=True, seed=tf.constant([3, 4]))
    enc(ids + 1, mask, tf.zeros_like(ids), training=True, seed=tf.constant([5, 6]))
    assert _block_function.experimental_get_tracing_count() - before == 1

    block = enc.blocks[1]
    x = tf.random.stateless_normal([2, 6, 16], [0, 1])
    adder = tf.random.stateless_uniform([2, 1, 1, 6], [0, 2], -1.0, 0.0)
    h, a = 16, 2

    def heads(t):  # [B, L, H] -> [B, A, L, H/A]
        return tf.transpose(tf.reshape(t, [2, 6, a, h // a]), [0, 2, 1, 3])

    q, k, v = heads(block.query(x)), heads(block.key(x)), heads(block.value(x))
    probs = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / np.sqrt(h / a) + adder)
    context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [2, 6, h])
    x = block.attention_layer_norm(x + block.attention_output(context))
    want = block.output_layer_norm(x + block.output_dense(block.intermediate(x)))
    got = block(tf.random.stateless_normal([2, 6, 16], [0, 1]), adder, training=False)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


def test_training_block_is_dropout_applied_as_written():
    """With dropout, the block (its scales folded into the kernels: 1 / sqrt(H/A) into the
    query, each 1 / (1 - rate) into the projection whose output is dropped) computes the
    plain formula with `dropout` applied to the probabilities and both residual branches, and
    has its gradients."""
    from electra_tf import rng
    from electra_tf.layers import dropout

    h, a, seed = 16, 2, tf.constant([7, 9])
    block = TransformerBlock(h, a, 32, hidden_dropout=0.2, attention_dropout=0.3)
    block.build((None, None, h))
    x = tf.random.stateless_normal([2, 6, h], [0, 1])
    adder = tf.random.stateless_uniform([2, 1, 1, 6], [0, 2], -1.0, 0.0)

    def heads(t):  # [B, L, H] -> [B, A, L, H/A]
        return tf.transpose(tf.reshape(t, [2, 6, a, h // a]), [0, 2, 1, 3])

    def reference(x):
        s_probs, s_attended, s_ffn = rng.split(seed, 3)
        q, k, v = heads(block.query(x)), heads(block.key(x)), heads(block.value(x))
        probs = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / np.sqrt(h / a) + adder)
        probs = dropout(probs, 0.3, s_probs)
        context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [2, 6, h])
        x = block.attention_layer_norm(
            x + dropout(block.attention_output(context), 0.2, s_attended))
        ffn = block.output_dense(block.intermediate(x))
        return block.output_layer_norm(x + dropout(ffn, 0.2, s_ffn))

    results = []
    for fn in (reference, lambda x: block(x, adder, training=True, seed=seed)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * tf.random.stateless_normal(y.shape, [3, 3]))
        grads = tape.gradient(loss, [x] + block.trainable_weights)
        results.append([y] + grads)
    assert not np.allclose(results[1][0], block(x, adder, training=False))  # it dropped
    for want, got in zip(*results):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_padding_does_not_change_outputs(model_and_batch):
    """Outputs at real tokens do not depend on what sits in padded positions."""
    _, model, batch = model_and_batch
    disc = model.discriminator
    ids, mask, seg = batch["input_ids"], batch["input_mask"], batch["segment_ids"]
    noisy = tf.where(mask > 0, ids, 57)
    a = disc(ids, mask, seg)["disc_logits"].numpy()
    b = disc(noisy, mask, seg)["disc_logits"].numpy()
    m = mask.numpy() > 0
    np.testing.assert_allclose(a[m], b[m], atol=1e-5)


def test_mixed_bfloat16_keeps_float32_outputs_and_variables():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        cfg = tiny_config()
        model = build_pretrainer(cfg)
        out = model(masked(cfg), training=True, seed=tf.constant([0, 0]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(v.dtype == "float32" for v in model.weights)
    assert out["mlm_logits"].dtype == tf.float32 and out["disc_logits"].dtype == tf.float32
    assert np.isfinite(out["mlm_logits"].numpy()).all()


def test_discriminator_learns_to_spot_replacements_in_unseen_batches():
    """The real training step (PretrainStep: dropout, clipping, the paper's optimizer) on fresh
    batches every step: the discriminator must generalise, not memorise one batch.

    The text uses ids 5..54 of a 1000-word vocabulary and the generator is not trained
    (generator_weight 0), so its samples are mostly ids the text never has: a working model
    separates them almost perfectly within a few hundred steps (held-out AUC ~0.99). Labels
    misaligned with positions, a lost gradient or a broken update would keep the AUC near 0.5.
    """
    from electra_tf.training import PretrainStep

    cfg = tiny_config(vocab_size=1000).replace(pretrain=dict(
        generator_weight=0.0, learning_rate=5e-4, warmup_steps=20, batch_size=16))
    n, length = cfg.pretrain.num_predictions, cfg.pretrain.max_seq_length

    def batches(seed):
        def make(i):
            ids = tf.random.stateless_uniform([16, length], [seed, i], 5, 55, tf.int32)
            ids = tf.concat([tf.fill([16, 1], CLS), ids[:, 1:-1], tf.fill([16, 1], SEP)], 1)
            raw = {"input_ids": ids, "input_mask": tf.ones_like(ids),
                   "segment_ids": tf.zeros_like(ids)}
            return masking.mask_batch(raw, tf.stack([seed, tf.cast(i, tf.int32)]),
                                      mask_prob=0.15, num_predictions=n, mask_id=MASK,
                                      special_ids=(CLS, SEP, MASK))
        return tf.data.Dataset.range(10_000).map(lambda i: make(tf.cast(i, tf.int32)))

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = build_pretrainer(cfg)
        opt = optimization.pretraining_optimizer(5e-4, total_steps=400, warmup_steps=20)
        step = PretrainStep(model, opt, cfg.pretrain, strategy)
    train = iter(strategy.experimental_distribute_dataset(batches(1)))
    held_out = iter(strategy.experimental_distribute_dataset(batches(2)))

    def held_out_auc():
        sums = {k: v.numpy() for k, v in step.evaluate(held_out, tf.constant(4)).items()}
        # the exact AUC reads every token of the 4 batches: [4 x 16, L] logits and labels
        assert sums["disc_scores"].shape == sums["disc_labels"].shape == (64, length)
        assert sums["disc_labels"].sum() == sums["actual_pos"]
        return losses.summarize_metrics(sums)["disc_auc"]

    before = held_out_auc()
    step.train(train, tf.constant(300))
    after = held_out_auc()
    assert abs(before - 0.5) < 0.15, before
    assert after > 0.95, (before, after)


def _leading_values(variable, count=64):
    return variable.numpy().ravel()[:count].tobytes()


@pytest.mark.parametrize("objective", ["electra", "mlm"])
def test_every_random_variable_starts_with_its_own_values(objective):
    # An unseeded Keras 3 initializer object repeats its values: one shared by the word,
    # position and token-type tables made position_embeddings == word_embeddings[:P].
    from electra_tf.heads import build_task_model

    cfg = tiny_config().replace(pretrain={"objective": objective})
    keras.utils.set_random_seed(0)
    models = [build_pretrainer(cfg)] + [
        build_task_model(cfg.model, head, 3, answerable=head == "squad")
        for head in ("classification", "tagging", "squad")]
    for model in models:
        seen = {}
        for v in model.weights:
            if np.unique(v.numpy()).size < 3:  # zeros / ones (biases, LayerNorm)
                continue
            key = _leading_values(v)
            if key in seen:
                pytest.fail(f"{v.path} starts with the values of {seen[key]}")
            seen[key] = v.path


def test_initializers_follow_the_authors():
    # truncated normal 0.02 everywhere, except the plain tf.layers.dense of the authors' code:
    # embeddings_project and the discriminator's logits are Glorot uniform
    cfg = tiny_config(vocab_size=2000, embedding_size=64, hidden_size=128, intermediate_size=256,
                      generator_fraction=0.25)
    keras.utils.set_random_seed(0)
    model = build_pretrainer(cfg)
    std = {v.path: float(v.numpy().std()) for v in model.weights}
    glorot = lambda fan_in, fan_out: np.sqrt(2.0 / (fan_in + fan_out))  # noqa: E731
    truncated = 0.02 * 0.8796  # the std of a normal truncated at 2 sigma
    expected = {
        "electra/embeddings/word_embeddings": truncated,
        "electra/embeddings/position_embeddings": truncated,
        "electra/discriminator/encoder/embeddings_project/kernel": glorot(64, 128),
        "electra/generator/encoder/embeddings_project/kernel": glorot(64, 32),
        "electra/discriminator/encoder/layer_0/query/kernel": truncated,
        "electra/discriminator/discriminator_predictions/dense/kernel": truncated,
        "electra/discriminator/discriminator_predictions/logits/kernel": glorot(128, 1),
        "electra/generator/generator_predictions/dense/kernel": truncated,
    }
    for path, value in expected.items():
        assert path in std, sorted(std)
        assert abs(std[path] / value - 1) < 0.15, (path, std[path], value)


def test_gelu_is_the_exact_gelu_and_its_derivative():
    # ours computes the authors' x * 0.5 * (1 + erf(x / sqrt 2)) in float32 with the
    # derivative written out (twice as fast on CPU as TF's erfc chain in bfloat16); it must be
    # the authors' function, TF's exact GELU up to float32's rounding of 1 + erf in the left
    # tail, and have the same gradient
    from electra_tf.layers import gelu

    x = tf.concat([tf.linspace(-12.0, 12.0, 2001), tf.random.normal([4000], seed=3) * 3], 0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, reference = gelu(x), tf.nn.gelu(x, approximate=False)
        authors = x * 0.5 * (1.0 + tf.math.erf(x / np.sqrt(2.0)))
    # for x << 0, 1 + erf(x / sqrt 2) is a few float32 steps of 2^-24 (erf is within an ulp
    # of -1): the authors' form carries that absolute error, |x| 2^-22 bounds it
    tail = np.abs(x.numpy()) * 2.0 ** -22
    for want in (authors, reference):
        assert (np.abs(ours.numpy() - want.numpy()) <= 1e-6 * np.abs(want.numpy()) + tail).all()
    assert np.abs(ours.numpy() - reference.numpy()).max() > 0  # not TF's erfc form
    np.testing.assert_allclose(tape.gradient(ours, x).numpy(),
                               tape.gradient(reference, x).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours, x).numpy(),
                               tape.gradient(authors, x).numpy(), rtol=1e-6, atol=1e-6)
    # bfloat16 in, bfloat16 out, rounded once: within half a bfloat16 ulp of the float32 value
    xb = tf.cast(x, tf.bfloat16)
    exact = gelu(tf.cast(xb, tf.float32)).numpy()
    got = gelu(xb)
    assert got.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(got, tf.float32).numpy(), exact,
                               rtol=2.0 ** -8, atol=1e-30)
    with tf.GradientTape() as tape:
        tape.watch(xb)
        y = gelu(xb)
    assert tape.gradient(y, xb).dtype == tf.bfloat16


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_block_layer_norm_matches_keras_values_and_gradients(dtype):
    # the encoder block's LayerNorm has its gradient written out; Keras' layer is the reference
    from electra_tf.layers import _layer_norm

    x = tf.random.normal([64, 48], seed=1) * 3 + 1
    reference = keras.layers.LayerNormalization(epsilon=1e-12)
    reference.build((None, 48))
    reference.gamma.assign(tf.random.normal([48], seed=2))
    reference.beta.assign(tf.random.normal([48], seed=3))
    dy = tf.random.normal([64, 48], seed=4)
    xd = tf.cast(x, dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xd)
        gamma, beta = tf.identity(reference.gamma), tf.identity(reference.beta)
        tape.watch([gamma, beta])
        ours = _layer_norm(xd, gamma, beta, 1e-12)
        theirs = reference(tf.cast(xd, tf.float32))  # float32 statistics in both
    assert ours.dtype == dtype
    tol = 1e-5 if dtype == "float32" else 2.0 ** -7
    np.testing.assert_allclose(tf.cast(ours, tf.float32).numpy(), theirs.numpy(),
                               rtol=tol, atol=tol * 4)
    ours_grads = tape.gradient(ours, [xd, gamma, beta], output_gradients=tf.cast(dy, dtype))
    theirs_grads = tape.gradient(theirs, [xd, reference.gamma, reference.beta],
                                 output_gradients=dy)
    for name, a, b in zip(("x", "gamma", "beta"), ours_grads, theirs_grads):
        a, b = tf.cast(a, tf.float32).numpy(), tf.cast(b, tf.float32).numpy()
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, atol=tol * 4 * scale, err_msg=name)
