"""Config: published sizes, derived generator, JSON round trip, named errors."""

import dataclasses
import json

import pytest

from electra_tf.config import (
    SIZES,
    ConfigError,
    ElectraConfig,
    ModelConfig,
    PretrainConfig,
    approx_params,
    get_config,
)


@pytest.mark.parametrize("size,layers,hidden,emb,heads,ffn,frac,gen_hidden,gen_heads,mask_prob,n",
                         [("small", 12, 256, 128, 4, 1024, 0.25, 64, 1, 0.15, 19),
                          ("base", 12, 768, 768, 12, 3072, 1 / 3, 256, 4, 0.15, 79),
                          ("large", 24, 1024, 1024, 16, 4096, 0.25, 256, 4, 0.25, 130)])
def test_published_sizes(size, layers, hidden, emb, heads, ffn, frac, gen_hidden, gen_heads,
                         mask_prob, n):
    cfg = get_config(size)
    m, p = cfg.model, cfg.pretrain
    assert (m.num_layers, m.hidden_size, m.embedding_size, m.num_heads, m.intermediate_size) == (
        layers, hidden, emb, heads, ffn)
    assert m.generator_fraction == pytest.approx(frac)
    assert (m.generator_hidden_size, m.generator_num_heads) == (gen_hidden, gen_heads)
    assert m.generator_intermediate_size == 4 * gen_hidden
    assert m.max_position_embeddings == 512 and m.vocab_size == 30522
    assert p.mask_prob == mask_prob and p.num_predictions == n


def test_published_training_settings_and_param_counts():
    small, base, large = SIZES["small"], SIZES["base"], SIZES["large"]
    assert (small.pretrain.batch_size, small.pretrain.learning_rate,
            small.pretrain.train_steps) == (128, 5e-4, 1_000_000)
    assert (base.pretrain.batch_size, base.pretrain.learning_rate,
            base.pretrain.train_steps) == (256, 2e-4, 766_000)
    assert (large.pretrain.batch_size, large.pretrain.learning_rate,
            large.pretrain.train_steps) == (2048, 2e-4, 400_000)
    # the authors' Adam (no bias correction) for the published sizes; tiny's short warmup needs it
    assert [SIZES[s].pretrain.adam_bias_correction for s in ("small", "base", "large", "tiny")
            ] == [False, False, False, True]
    # The paper's parameter counts (discriminator): 14M, 110M, 335M.
    assert approx_params(small.model) / 1e6 == pytest.approx(13.5, abs=1.0)
    assert approx_params(base.model) / 1e6 == pytest.approx(110, abs=2)
    assert approx_params(large.model) / 1e6 == pytest.approx(335, abs=2)


def test_json_round_trip():
    cfg = get_config("small").replace(model={"num_layers": 3}, pretrain={"mask_prob": 0.2})
    again = ElectraConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["model"]["num_layers"] == 3


@pytest.mark.parametrize("data,key", [
    ({"model": {"hidden_sise": 3}}, "model.hidden_sise"),
    ({"modle": {}}, "modle"),
    ({"pretrain": {"mask_prob": 0.0}}, "pretrain.mask_prob"),
    ({"pretrain": {"mask_prob": 1.5}}, "pretrain.mask_prob"),
    ({"model": {"generator_fraction": 0}}, "model.generator_fraction"),
    ({"model": {"generator_fraction": 1.2}}, "model.generator_fraction"),
    ({"model": {"hidden_size": -4}}, "model.hidden_size"),
    ({"model": {"num_layers": 0}}, "model.num_layers"),
    ({"model": {"hidden_size": 256, "num_heads": 3}}, "model.num_heads"),
    ({"model": {"hidden_dropout": 1.0}}, "model.hidden_dropout"),
    ({"pretrain": {"batch_size": 2.5}}, "pretrain.batch_size"),
    ({"pretrain": {"max_seq_length": 1024}}, "pretrain.max_seq_length"),
    ({"pretrain": {"objective": "bert"}}, "pretrain.objective"),
    ({"pretrain": {"random_token_rate": 0.2}}, "pretrain.random_token_rate"),  # 0.85 + 0.2 > 1
    ({"pretrain": {"adam_bias_correction": "yes"}}, "pretrain.adam_bias_correction"),
])
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        ElectraConfig.from_dict(data)


def test_unknown_size_and_frozen():
    with pytest.raises(ConfigError, match="unknown model size 'huge'"):
        get_config("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_config("small").model.hidden_size = 1  # frozen


def test_generator_fraction_one_is_full_size():  # the released Small++ uses a full generator
    m = ModelConfig(generator_fraction=1.0)
    assert (m.generator_hidden_size, m.generator_num_heads,
            m.generator_intermediate_size) == (256, 4, 1024)


def test_explicit_max_predictions_overrides_formula():
    assert PretrainConfig(max_seq_length=512, mask_prob=0.15).num_predictions == 79
    assert PretrainConfig(max_predictions_per_seq=20).num_predictions == 20
