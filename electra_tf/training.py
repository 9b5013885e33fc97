"""The pretraining step: strategy.run on per-replica batches, global-batch losses, one update.

One call of `PretrainStep.train(iterator, steps)` runs `steps` optimizer updates inside a single
tf.function (TPU-shaped: fixed shapes, no host round trip inside the loop). Per update:
  1. every replica takes its batch (size per_replica x accumulation) and splits it into
     `accumulation` micro-batches [k, b, ...];
  2. the loss denominators (masked slots, real tokens) are summed over micro-batches and
     replicas first, so each part's loss is its exact share of the global-batch mean;
  3. gradients are summed over micro-batches, all-reduced once, clipped by global norm
     (after aggregation, as the paper), and applied by the optimizer; under mixed_float16 the
     loss is scaled dynamically and a step with overflowing gradients is skipped;
  4. losses and metric sums come back summed over replicas and steps.
Dropout and sampling seeds come from (run seed, step, position in the global batch).
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

from electra_tf import graph_options, losses, optimization, rng
from electra_tf.config import PretrainConfig

LOSS_KEYS = ("loss", "mlm_loss", "disc_loss")


def sampling_seed(run_seed: int, step: tf.Tensor, part: tf.Tensor,
                  examples: tf.Tensor | None = None) -> tf.Tensor:
    """Stateless seed of micro-batch `part` at one step.

    With `examples` (the micro-batch size): a [4] seed; parts are numbered over the global batch
    (replica x accumulation), so every example draws the same dropout and sampled tokens however
    the global batch is split (see rng.uniform). Without: a [2] seed folded from `part`.
    """
    base = tf.stack([tf.constant(run_seed, tf.int32), tf.cast(step, tf.int32)])
    if examples is None:
        return tf.random.experimental.stateless_fold_in(base, tf.cast(part, tf.int32),
                                                        alg="philox")
    examples = tf.cast(examples, tf.int32)
    return rng.batch_seed(base, tf.cast(part, tf.int32) * examples, examples)


def _split(batch: Mapping[str, tf.Tensor], parts: int) -> dict[str, tf.Tensor]:
    """[k * b, ...] -> [k, b, ...] for every key."""
    return {k: tf.reshape(v, tf.concat([[parts, -1], tf.shape(v)[1:]], 0))
            for k, v in batch.items()}


class PretrainStep:
    """Compiled pretraining (and evaluation) steps of an ElectraPretrainer under a strategy.

    Create it, the model and the optimizer inside `strategy.scope()`. The optimizer must not
    aggregate gradients itself (`AdamWeightDecay(aggregate_gradients=False)`).
    """

    def __init__(self, model, optimizer, cfg: PretrainConfig, strategy: tf.distribute.Strategy,
                 accumulation_steps: int = 1, jit_compile: bool = False):
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
        if getattr(optimizer, "aggregate_gradients", False):
            raise ValueError("PretrainStep aggregates and clips gradients itself: build the "
                             "optimizer with aggregate_gradients=False")
        self.model, self.optimizer, self.cfg = model, optimizer, cfg
        self.strategy = strategy
        self.accumulation_steps = accumulation_steps
        self.variables = model.trainable_variables
        # float16 needs loss scaling (bfloat16 has float32's range and does not)
        self.loss_scale = None
        if keras.mixed_precision.global_policy().compute_dtype == "float16":
            self.loss_scale = optimization.DynamicLossScale()
            optimizer.loss_scale = self.loss_scale
        optimizer.build(self.variables)  # before the first strategy.run (Keras 3 requirement)
        # XLA compiles the model's forward and backward pass; the loop around it reads the
        # input iterator and runs collectives, which XLA on CPU/GPU cannot compile (a TPU
        # strategy compiles everything anyway).
        self._gradients = (tf.function(self._replica_gradients, jit_compile=True)
                           if jit_compile else self._replica_gradients)
        # No autograph: the loops are explicit tf.while_loops, and converting every function
        # of the step to graph code took ~2 s of each first call.
        self._train = tf.function(self._train_loop, autograph=False)
        self._evaluate = tf.function(self._eval_loop, autograph=False)

    def train(self, iterator, steps: tf.Tensor) -> dict[str, tf.Tensor]:
        """Runs `steps` updates; returns sums over steps of losses, metric sums, grad_norm,
        and the discriminator's AUC sample of every step (losses.SAMPLE_KEYS, [S, L])."""
        with graph_options.lean_grappler():
            return self._train(iterator, steps)

    def evaluate(self, iterator, steps: tf.Tensor) -> dict[str, tf.Tensor]:
        """Evaluates `steps` batches with dropout off; returns sums like `train`."""
        with graph_options.lean_grappler():
            return self._evaluate(iterator, steps)

    # --- one replica ------------------------------------------------------------------------
    def _forward(self, batch, denominators, seed, training):
        """(losses, metric sums, AUC sample) of one (micro-)batch."""
        out = self.model(batch, training=training, seed=seed)
        result = losses.pretraining_losses(out, batch, self.cfg, denominators)
        rows = losses.sample_rows(batch["input_ids"],
                                  self.strategy.num_replicas_in_sync * self.accumulation_steps)
        return result, losses.metric_sums(out, batch), losses.disc_sample(out, batch, rows)

    def _replica_train(self, batch):
        ctx = tf.distribute.get_replica_context()
        # Denominators of the whole global batch, known before any forward pass.
        denominators = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                      losses.loss_denominators(batch))
        step = tf.convert_to_tensor(self.optimizer.iterations)  # a value, not the variable
        scale = (tf.convert_to_tensor(self.loss_scale.scale) if self.loss_scale is not None
                 else tf.constant(1.0))
        grads, totals, sample = self._gradients(batch, denominators, step,
                                                ctx.replica_id_in_sync_group, scale)
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if self.loss_scale is not None:  # unscale; skip the update if anything overflowed
            grads = [g / scale for g in grads]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            grads = [tf.where(finite, g, tf.zeros_like(g)) for g in grads]
            self.loss_scale.update(finite)
        grads, grad_norm = tf.clip_by_global_norm(grads, self.cfg.clip_norm)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        totals["grad_norm"] = grad_norm / tf.cast(ctx.num_replicas_in_sync, tf.float32)
        return totals, sample

    def _replica_gradients(self, batch, denominators, step, replica_id, scale):
        """This replica's summed gradients, metric sums over its micro-batches and the first
        micro-batch's AUC sample.

        No collectives and no input here, so `jit_compile` can compile it whole on any device.
        """
        k = self.accumulation_steps
        parts = _split(batch, k)
        grads = totals = sample = None
        for i in range(k):  # unrolled: k is small, and XLA needs no loop-carried gradients
            micro = {key: v[i] for key, v in parts.items()}
            seed = sampling_seed(self.cfg.seed, step, replica_id * k + i,
                                 tf.shape(micro["input_ids"])[0])
            with tf.GradientTape() as tape:
                result, sums, micro_sample = self._forward(micro, denominators, seed,
                                                           training=True)
                scaled_loss = result["loss"] * scale  # float16: keep small gradients alive
            micro_grads = [tf.convert_to_tensor(g)  # IndexedSlices of the tables -> dense
                           for g in tape.gradient(scaled_loss, self.variables)]
            grads = micro_grads if grads is None else [
                g + mg for g, mg in zip(grads, micro_grads)]
            part = {**result, **sums}
            totals = part if totals is None else {n: totals[n] + part[n] for n in part}
            sample = sample or micro_sample
        return grads, totals, sample

    def _replica_eval(self, batch):
        ctx = tf.distribute.get_replica_context()
        denominators = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                      losses.loss_denominators(batch))
        seed = sampling_seed(self.cfg.seed + 1, 0, ctx.replica_id_in_sync_group,
                             tf.shape(batch["input_ids"])[0])
        result, sums, sample = self._forward(batch, denominators, seed, training=False)
        return {**result, **sums}, sample

    # --- loops over steps (one tf.function call) ---------------------------------------------
    def _train_loop(self, iterator, steps):
        return self._run(self._replica_train, iterator, steps, extra=("grad_norm",))

    def _eval_loop(self, iterator, steps):
        return self._run(self._replica_eval, iterator, steps)

    def _run(self, fn, iterator, steps, extra=()):
        """Runs `fn` (-> sums, AUC sample) on `steps` batches: the sums summed over replicas and
        steps, the samples gathered over replicas and concatenated over steps ([S, L])."""
        shapes = {**{k: () for k in LOSS_KEYS + extra}, **losses.metric_shapes()}
        totals = {k: tf.zeros(shape, tf.float32) for k, shape in shapes.items()}
        samples = {k: tf.TensorArray(dtype, size=0, dynamic_size=True, infer_shape=False)
                   for k, dtype in zip(losses.SAMPLE_KEYS, (tf.float32, tf.int32))}

        def body(i, totals, samples):
            per_replica, sample = self.strategy.run(fn, args=(next(iterator),))
            totals = {k: totals[k] + self.strategy.reduce(tf.distribute.ReduceOp.SUM,
                                                          per_replica[k], axis=None)
                      for k in totals}
            samples = {k: samples[k].write(i, self.strategy.gather(sample[k], axis=0))
                       for k in samples}
            return i + 1, totals, samples

        # one trace of `fn`, one loop in the graph
        _, totals, samples = tf.while_loop(lambda i, *_: i < steps, body,
                                           (tf.constant(0), totals, samples))
        return {**totals, **{k: v.concat() for k, v in samples.items()}}
