"""The paper's optimizer: Adam with decoupled weight decay, no bias correction, warmup x decay.

Official (electra/model/optimization.py): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
update = m / (sqrt(v) + eps) + wd * w (wd not on LayerNorm weights and biases); w -= lr * update.
No bias correction by default (the published models used none); `bias_correction=True` adds it.
"""

from __future__ import annotations

import re

import keras
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


@keras.saving.register_keras_serializable("electra_tf")
class AdamWeightDecay(keras.optimizers.Optimizer):
    """Adam with decoupled weight decay as in BERT/ELECTRA (see the module docstring).

    Variables whose path matches `no_decay_pattern` (LayerNorm weights, biases) get no decay.
    Clip with `global_clipnorm` (1.0 in the paper), applied to the aggregated gradients.
    """

    def __init__(self, learning_rate=1e-4, weight_decay: float = 0.01, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-6, bias_correction: bool = False,
                 no_decay_pattern: str = NO_DECAY_PATTERN, name: str = "adam_weight_decay",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.decay_rate = weight_decay  # not `weight_decay`: the base class would apply it again
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.bias_correction = bias_correction
        self.no_decay_pattern = no_decay_pattern
        self._no_decay = re.compile(no_decay_pattern)

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

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self._m[index], self._v[index]
        self.assign_add(m, (gradient - m) * (1.0 - self.beta_1))
        self.assign_add(v, (ops.square(gradient) - v) * (1.0 - self.beta_2))
        if self.bias_correction:
            t = ops.cast(self.iterations + 1, variable.dtype)
            m_hat = m / (1.0 - ops.power(ops.cast(self.beta_1, variable.dtype), t))
            v_hat = v / (1.0 - ops.power(ops.cast(self.beta_2, variable.dtype), t))
        else:
            m_hat, v_hat = m, v
        update = m_hat / (ops.sqrt(v_hat) + self.epsilon)
        if self._decayed[index]:
            update += self.decay_rate * variable
        self.assign_sub(variable, lr * update)

    def get_config(self):
        config = super().get_config()
        config.update(weight_decay=self.decay_rate, beta_1=self.beta_1, beta_2=self.beta_2,
                      epsilon=self.epsilon, bias_correction=self.bias_correction,
                      no_decay_pattern=self.no_decay_pattern)
        return config


def pretraining_optimizer(learning_rate: float, total_steps: int, warmup_steps: int,
                          weight_decay: float = 0.01, epsilon: float = 1e-6,
                          clip_norm: float = 1.0) -> AdamWeightDecay:
    """The paper's pretraining optimizer and schedule."""
    return AdamWeightDecay(WarmupLinearDecay(learning_rate, total_steps, warmup_steps),
                           weight_decay=weight_decay, epsilon=epsilon, global_clipnorm=clip_norm)
