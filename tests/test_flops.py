"""The analytic FLOPs formula reproduces the recipe's published figure."""

import pytest

from electra_tf.config import get_config
from electra_tf.flops import electra_train_flops, mlm_train_flops


def test_electra_small_about_9_gflop_per_sequence():
    small = get_config("small")
    per_seq = electra_train_flops(small.model, 1, 128, small.pretrain.num_predictions)
    assert per_seq / 1e9 == pytest.approx(9.0, abs=0.05)
    assert electra_train_flops(small.model, 32, 128, 19) == 32 * per_seq


def test_mlm_only_costs_less_than_electra_with_same_encoder():
    small = get_config("small").model
    assert mlm_train_flops(small, 1, 128, 19) < electra_train_flops(small, 1, 128, 19)
