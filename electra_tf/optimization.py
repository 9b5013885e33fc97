"""The paper's optimizer: Adam with decoupled weight decay, no bias correction, warmup x decay.

Official (electra/model/optimization.py): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
update = m / (sqrt(v) + eps) + wd * w (wd not on LayerNorm weights and biases); w -= lr * update.
No bias correction by default (the published models used none); `bias_correction=True` adds it.
"""

from __future__ import annotations

import re
import weakref

import keras
import tensorflow as tf
from keras import ops

NO_DECAY_PATTERN = r"layer_norm|LayerNorm|bias"


@keras.saving.register_keras_serializable("electra_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr * (1 - step / total) * min(1, step / warmup): the warmup multiplies the decayed rate."""

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int):
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decay = ops.maximum(0.0, 1.0 - ops.minimum(step, self.total_steps) / self.total_steps)
        if self.warmup_steps > 0:
            decay *= ops.minimum(1.0, step / float(self.warmup_steps))
        return self.learning_rate * decay

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def _handle(variable):
    """The resource handle of a Keras or tf variable (the device-local one inside an update)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


@keras.saving.register_keras_serializable("electra_tf")
class AdamWeightDecay(keras.optimizers.Optimizer):
    """Adam with decoupled weight decay as in BERT/ELECTRA (see the module docstring).

    Variables whose path matches `no_decay_pattern` (LayerNorm weights, biases) get no decay.

    `aggregate_gradients=False` is for our training loop, which all-reduces and clips the
    gradients itself: Keras would clip each replica's gradient *before* its all-reduce, while
    the paper clips the aggregated gradient, and a second all-reduce would double the traffic.
    """

    def __init__(self, learning_rate=1e-4, weight_decay: float = 0.01, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-6, bias_correction: bool = False,
                 no_decay_pattern: str = NO_DECAY_PATTERN, aggregate_gradients: bool = True,
                 name: str = "adam_weight_decay", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.decay_rate = weight_decay  # not `weight_decay`: the base class would apply it again
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.bias_correction = bias_correction
        self.no_decay_pattern = no_decay_pattern
        self.aggregate_gradients = aggregate_gradients
        self._no_decay = re.compile(no_decay_pattern)
        self._constant_cache = weakref.WeakKeyDictionary()
        self.loss_scale: DynamicLossScale | None = None  # set by the loop for float16

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._m, self._v = self.add_optimizer_variables(var_list, ["m", "v"])
        # Decided here, on the Keras variables' paths: update_step may see the raw tf.Variable.
        self._decayed = [self.decays(v) for v in var_list]

    def decays(self, variable) -> bool:
        """Whether weight decay applies to a variable (by path, e.g. '.../layer_norm/gamma')."""
        return self.decay_rate > 0 and not self._no_decay.search(variable.path)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if self.aggregate_gradients:
            return super()._all_reduce_sum_gradients(grads_and_vars)
        return list(grads_and_vars)

    def update_step(self, gradient, variable, learning_rate):
        # One fused kernel per variable (ResourceApplyAdam) instead of ~25 small ops: the graph
        # of a 400-variable model then traces in seconds, not tens of seconds. With beta powers
        # 0 its step size is lr * sqrt(1 - 0) / (1 - 0) = lr: no bias correction.
        # Decoupled decay first, w -= lr * wd * w, then w -= lr * m / (sqrt(v) + eps): that is
        # the official w -= lr * (m / (sqrt(v) + eps) + wd * w) with the same (old) w.
        index = self._get_variable_index(variable)
        c = self._constants(variable.dtype)
        lr = tf.cast(learning_rate, variable.dtype)
        beta_1, beta_2 = c["beta_1"], c["beta_2"]
        if self.loss_scale is not None:
            # A step with non-finite (zeroed) gradients leaves everything as it was: lr 0 and
            # betas 1 keep the weights and both moments (no tf.cond around the update, which
            # Keras' distributed update path does not allow).
            applied = tf.cast(self.loss_scale.finite, variable.dtype)
            lr *= applied
            beta_1 = 1.0 - (1.0 - beta_1) * applied
            beta_2 = 1.0 - (1.0 - beta_2) * applied
        if self._decayed[index]:
            variable.assign_sub(lr * c["decay"] * variable)
        epsilon = c["epsilon"]
        if self.bias_correction:
            # The kernel steps lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps'): with
            # eps' = eps * sqrt(1 - b2^t) that is exactly lr * m_hat / (sqrt(v_hat) + eps), the
            # bias-corrected rule as written (and torch.optim.AdamW's), not Adam's "epsilon hat"
            # variant, whose eps grows 1 / sqrt(1 - b2^t) times (~30x at step 1) in m_hat's units.
            t = tf.cast(self.iterations + 1, variable.dtype)
            beta_1_power, beta_2_power = tf.pow(c["beta_1"], t), tf.pow(c["beta_2"], t)
            epsilon = epsilon * tf.sqrt(1.0 - beta_2_power)
        else:
            beta_1_power = beta_2_power = c["zero"]
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._m[index]), v=_handle(self._v[index]),
            beta1_power=beta_1_power, beta2_power=beta_2_power, lr=lr, beta1=c["beta_1"],
            beta2=c["beta_2"], epsilon=epsilon, grad=tf.cast(gradient, variable.dtype))

    def _constants(self, dtype) -> dict:
        """The update's constants, created once per graph and dtype (not once per variable)."""
        graph = tf.compat.v1.get_default_graph()
        per_graph = self._constant_cache.setdefault(graph, {})
        if dtype not in per_graph:
            per_graph[dtype] = {
                name: tf.constant(value, dtype) for name, value in
                (("beta_1", self.beta_1), ("beta_2", self.beta_2), ("epsilon", self.epsilon),
                 ("decay", self.decay_rate), ("zero", 0.0))}
        return per_graph[dtype]

    def get_config(self):
        config = super().get_config()
        config.update(weight_decay=self.decay_rate, beta_1=self.beta_1, beta_2=self.beta_2,
                      epsilon=self.epsilon, bias_correction=self.bias_correction,
                      no_decay_pattern=self.no_decay_pattern,
                      aggregate_gradients=self.aggregate_gradients)
        return config


class DynamicLossScale(tf.Module):
    """Dynamic loss scaling for float16: the loss is multiplied by `scale` before the backward
    pass so small gradients survive float16; gradients are divided by it afterwards. A step whose
    gradients are not finite is skipped (`finite` is False; the optimizer then changes nothing)
    and the scale halves; after `growth_interval` finite steps in a row it doubles.

    Create it inside `strategy.scope()`; `update` runs in replica context on the all-reduced
    (identical) finiteness, so every replica makes the same change.
    """

    def __init__(self, initial_scale: float = 2.0 ** 15, growth_interval: int = 2000,
                 factor: float = 2.0):
        super().__init__(name="loss_scale")
        variable = dict(trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.scale = tf.Variable(initial_scale, dtype=tf.float32, **variable)
        self.good_steps = tf.Variable(0, dtype=tf.int64, **variable)
        self.finite = tf.Variable(True, **variable)
        self.growth_interval, self.factor = growth_interval, factor

    def update(self, finite: tf.Tensor) -> None:
        """Records this step's gradient finiteness and adapts the scale."""
        grow = finite & (self.good_steps + 1 >= self.growth_interval)
        self.finite.assign(finite)
        self.scale.assign(tf.where(finite, tf.where(grow, self.scale * self.factor, self.scale),
                                   tf.maximum(self.scale / self.factor, 1.0)))
        self.good_steps.assign(tf.where(finite & ~grow, self.good_steps + 1,
                                        tf.zeros([], tf.int64)))


def pretraining_optimizer(learning_rate: float, total_steps: int, warmup_steps: int,
                          weight_decay: float = 0.01, epsilon: float = 1e-6,
                          bias_correction: bool = False) -> AdamWeightDecay:
    """The paper's pretraining optimizer and schedule, for our loop (which aggregates and clips
    the gradients itself: see `training.py`)."""
    return AdamWeightDecay(WarmupLinearDecay(learning_rate, total_steps, warmup_steps),
                           weight_decay=weight_decay, epsilon=epsilon,
                           bias_correction=bias_correction, aggregate_gradients=False)


# --- fine-tuning: layer-wise learning-rate decay ------------------------------------------------

LLRD_MODES = ("official", "corrected")
_LAYER = re.compile(r"/layer_(\d+)/")
_EMBEDDINGS = re.compile(r"/embeddings(_project)?/")


def layer_depth(path: str, num_layers: int) -> int:
    """Depth of a fine-tuned variable by its path: 0 embeddings (and their projection),
    i + 1 for encoder layer_i, num_layers + 1 for anything else (the task head)."""
    match = _LAYER.search(path)
    if match:
        return int(match.group(1)) + 1
    if _EMBEDDINGS.search(path):
        return 0
    return num_layers + 1


def layerwise_lr_scale(depth: int, num_layers: int, decay: float, mode: str = "official"
                       ) -> float:
    """The factor on the learning rate of a variable at `depth` (see `layer_depth`).

    corrected: decay ** (num_layers + 1 - depth): the head 1, the top layer decay, the
      embeddings decay ** (num_layers + 1) -- each step down one more factor of decay.
    official:  the authors' code puts the head at depth num_layers + 2, so every encoder
      variable gets one factor more: the top layer decay ** 2, the embeddings
      decay ** (num_layers + 2); the head still 1 (upstream issue #51). The published
      results and their decay values (0.8 Small/Base, 0.9 Large) came from this form.
    """
    if mode not in LLRD_MODES:
        raise ValueError(f"unknown layer-wise decay mode {mode!r}; expected one of {LLRD_MODES}")
    if depth > num_layers:
        return 1.0
    top = num_layers + (2 if mode == "official" else 1)
    return float(decay ** (top - depth))


def layerwise_lr_scales(variables, num_layers: int, decay: float, mode: str = "official"
                        ) -> dict[str, float]:
    """{variable path: learning-rate factor} for the variables to be trained; decay 1.0 = off."""
    return {v.path: layerwise_lr_scale(layer_depth(v.path, num_layers), num_layers, decay, mode)
            for v in variables}


@keras.saving.register_keras_serializable("electra_tf")
class LayerwiseAdamWeightDecay(AdamWeightDecay):
    """AdamWeightDecay whose learning rate is scaled per variable (`lr_scales`, by path).

    The scale multiplies the learning rate of the update (and so of the decoupled weight
    decay), as the authors' code does: scaling the gradient instead would do nothing, since
    Adam's step is invariant to the gradient's scale. Variables missing from `lr_scales` are
    an error, so a renamed layer cannot silently train at the wrong rate.
    """

    def __init__(self, learning_rate=1e-4, lr_scales: dict[str, float] | None = None, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.lr_scales = dict(lr_scales or {})

    def build(self, var_list):
        if self.built:
            return
        missing = [v.path for v in var_list if v.path not in self.lr_scales]
        if missing:
            raise ValueError(f"no layer-wise learning-rate scale for {missing[:3]}")
        super().build(var_list)
        self._scales = [self.lr_scales[v.path] for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scales[self._get_variable_index(variable)]
        super().update_step(gradient, variable, learning_rate * scale)

    def get_config(self):
        config = super().get_config()
        config.update(lr_scales=self.lr_scales)
        return config


def finetuning_optimizer(variables, learning_rate: float, total_steps: int, warmup_steps: int,
                         num_layers: int, layerwise_decay: float, mode: str = "official",
                         weight_decay: float = 0.01, epsilon: float = 1e-6,
                         bias_correction: bool = False) -> LayerwiseAdamWeightDecay:
    """The authors' fine-tuning optimizer: their Adam, warmup x linear decay, layer-wise decay
    of the learning rate over `variables` (for our loop, which aggregates and clips)."""
    return LayerwiseAdamWeightDecay(
        WarmupLinearDecay(learning_rate, total_steps, warmup_steps),
        lr_scales=layerwise_lr_scales(variables, num_layers, layerwise_decay, mode),
        weight_decay=weight_decay, epsilon=epsilon, bias_correction=bias_correction,
        aggregate_gradients=False)
