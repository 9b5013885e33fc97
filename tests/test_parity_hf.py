"""Parity with the reference: transformers' PyTorch ELECTRA, weights copied via our name map.

Dropout is off; the discriminator and generator logits must agree within 1e-4 in float32.
"""

import numpy as np
import pytest
import tensorflow as tf
from helpers import packed_batch, tiny_config

from electra_tf import convert
from electra_tf.config import get_config
from electra_tf.models import build_pretrainer

torch = pytest.importorskip("torch", reason="parity tests need torch (make test installs it)")
transformers = pytest.importorskip("transformers", reason="parity tests need transformers")


def hf_models(cfg):
    m = cfg.model
    common = dict(vocab_size=m.vocab_size, embedding_size=m.embedding_size,
                  max_position_embeddings=m.max_position_embeddings,
                  type_vocab_size=m.type_vocab_size, hidden_act="gelu",
                  layer_norm_eps=m.layer_norm_eps, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, initializer_range=m.initializer_range,
                  num_hidden_layers=m.num_layers)
    disc_cfg = transformers.ElectraConfig(hidden_size=m.hidden_size,
                                          num_attention_heads=m.num_heads,
                                          intermediate_size=m.intermediate_size, **common)
    gen_cfg = transformers.ElectraConfig(hidden_size=m.generator_hidden_size,
                                         num_attention_heads=m.generator_num_heads,
                                         intermediate_size=m.generator_intermediate_size, **common)
    torch.manual_seed(0)
    disc = transformers.ElectraForPreTraining(disc_cfg).eval()
    gen = transformers.ElectraForMaskedLM(gen_cfg).eval()
    gen.electra.embeddings = disc.electra.embeddings  # shared, as in ELECTRA
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight  # re-tie
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so every map entry matters
        for p in list(disc.parameters()) + list(gen.parameters()):
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return disc, gen


def state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def check_parity(cfg, batch_size, length):
    disc, gen = hf_models(cfg)
    gen_state = state(gen)
    np.testing.assert_array_equal(gen_state["generator_lm_head.weight"],
                                  gen_state["electra.embeddings.word_embeddings.weight"])
    model = build_pretrainer(cfg)
    convert.load_hf_weights(model, state(disc), gen_state)
    batch = packed_batch(batch_size, length, cfg.model.vocab_size, seed=4)
    ids, mask, seg = (batch[k] for k in ("input_ids", "input_mask", "segment_ids"))
    positions = tf.constant(np.random.default_rng(0).integers(1, length, (batch_size, 5)),
                            tf.int32)
    to_torch = lambda t: torch.from_numpy(t.numpy().astype(np.int64))  # noqa: E731
    with torch.no_grad():
        ref_disc = disc(input_ids=to_torch(ids), attention_mask=to_torch(mask),
                        token_type_ids=to_torch(seg)).logits.numpy()
        ref_gen = gen(input_ids=to_torch(ids), attention_mask=to_torch(mask),
                      token_type_ids=to_torch(seg)).logits.numpy()
    ours_disc = model.discriminator(ids, mask, seg, training=False)["disc_logits"].numpy()
    ours_gen = model.generator(ids, mask, seg, positions, training=False).numpy()
    ref_gen = np.take_along_axis(ref_gen, positions.numpy()[:, :, None], axis=1)
    real = mask.numpy() > 0  # padded positions' outputs are unused (and HF masks differently)
    np.testing.assert_allclose(ours_disc[real], ref_disc[real], atol=1e-4, rtol=0)
    np.testing.assert_allclose(ours_gen, ref_gen, atol=1e-4, rtol=0)
    assert np.abs(ref_disc[real]).max() > 1e-2  # not trivially zero
    return model, disc, gen


def test_parity_tiny():
    # E=16 != H=32 and generator Hg=16 = E: the discriminator projects, the generator does not.
    check_parity(tiny_config(vocab_size=300, max_seq_length=32, num_layers=3), 4, 32)


@pytest.mark.slow
def test_parity_small():
    # The published Small: E=128 != H=256, generator Hg=64 with its own projection, V=30522.
    check_parity(get_config("small"), 2, 128)


def test_round_trip_to_hf_names_is_exact():
    cfg = tiny_config()
    model = build_pretrainer(cfg)
    disc_state = convert.to_hf_state(convert.discriminator_variables(model.discriminator))
    gen_state = convert.to_hf_state(convert.generator_variables(model.generator))
    other = build_pretrainer(cfg)
    convert.load_hf_weights(other, disc_state, gen_state)
    for a, b in zip(convert.pretrainer_variables(model).values(),
                    convert.pretrainer_variables(other).values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(convert.pretrainer_variables(model)) == len(model.weights)


def test_missing_or_misshaped_weights_are_named():
    cfg = tiny_config()
    model = build_pretrainer(cfg)
    good = convert.to_hf_state(convert.discriminator_variables(model.discriminator))
    missing = {k: v for k, v in good.items() if "layer.1.attention.self.key.weight" not in k}
    with pytest.raises(convert.ConversionError,
                       match=r"missing 'electra.encoder.layer.1.attention.self.key.weight'"):
        convert.load_hf_weights(model, missing)
    wrong = dict(good)
    wrong["electra.embeddings.word_embeddings.weight"] = np.zeros((7, 16), np.float32)
    with pytest.raises(convert.ConversionError, match=r"shape \(7, 16\), expected \(100, 16\)"):
        convert.load_hf_weights(model, wrong)
