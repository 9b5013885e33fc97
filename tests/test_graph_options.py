"""The leaner Grappler settings apply only inside `lean_grappler`, and a step runs the same."""

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
from tensorflow.python.eager import context

from electra_tf.graph_options import lean_grappler

RC = rewriter_config_pb2.RewriterConfig


def rewrite_options():
    config = config_pb2.ConfigProto()
    config.ParseFromString(context.context().function_call_options.config_proto_serialized)
    return config


def test_lean_options_apply_inside_and_are_restored_after():
    before = rewrite_options()
    with lean_grappler():
        inside = rewrite_options()
    after = rewrite_options()
    rewrite = inside.graph_options.rewrite_options
    assert rewrite.memory_optimization == RC.NO_MEM_OPT
    assert rewrite.layout_optimizer == RC.OFF
    assert rewrite.disable_tfg_optimizer
    assert rewrite.meta_optimizer_iterations == RC.ONE
    assert rewrite.remapping != RC.OFF and rewrite.constant_folding != RC.OFF  # kept
    # everything else (devices, soft placement, collectives) comes from the current options
    inside.graph_options.ClearField("rewrite_options")
    before.graph_options.ClearField("rewrite_options")
    assert inside == before
    assert after.graph_options.rewrite_options.memory_optimization != RC.NO_MEM_OPT


def test_a_function_computes_the_same_under_lean_options():
    @tf.function
    def f(x):
        return tf.nn.gelu(tf.matmul(x, x) + 1.0) * 2.0 - tf.reduce_mean(x)

    x = tf.random.stateless_normal([16, 16], [1, 2])
    with lean_grappler():
        lean = f(x).numpy()
    np.testing.assert_allclose(lean, f.python_function(x).numpy(), rtol=1e-6, atol=1e-6)
