"""Hugging Face directories (config.json + model.safetensors) and keras-hub's ElectraBackbone.

A pretrainer is written as two transformers-loadable directories:
  <dir>/discriminator   ElectraForPreTraining (encoder + replaced-token-detection head)
  <dir>/generator       ElectraForMaskedLM (its word table is tied to the embeddings, so the
                        file stores it once, as transformers does)
each with vocab.txt and tokenizer_config.json when a vocabulary is given, so
`AutoTokenizer.from_pretrained(dir)` works too. Only numpy and safetensors are needed: no torch.

keras-hub's ElectraBackbone computes a slightly different function from the ELECTRA recipe
(and from ours and transformers'): its FFN uses the tanh approximation of GELU, not the exact
erf GELU; it adds a pooler (dense + tanh over [CLS]) that ELECTRA never trained, left at its
random initialization here; and it masks padding with a large negative rather than -10000.
The sequence outputs agree once both use the same GELU (the test shows it); the difference
from the tanh GELU alone is small (around 1e-3) but not zero.
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from electra_tf import convert
from electra_tf.config import ModelConfig
from electra_tf.convert_tf1 import full_config
from electra_tf.models import Discriminator, ElectraPretrainer, build_pretrainer
from electra_tf.tokenization import Vocab, write_atomic

WEIGHTS = "model.safetensors"
TORCH_WEIGHTS = "pytorch_model.bin"
ARCHITECTURES = {"discriminator": "ElectraForPreTraining", "generator": "ElectraForMaskedLM"}


def hf_config(cfg: ModelConfig, network: str, pad_token_id: int = 0) -> dict:
    """transformers' ElectraConfig fields for the discriminator or the generator."""
    if network == "generator":
        hidden, heads, ffn = (cfg.generator_hidden_size, cfg.generator_num_heads,
                              cfg.generator_intermediate_size)
    else:
        hidden, heads, ffn = cfg.hidden_size, cfg.num_heads, cfg.intermediate_size
    return {"architectures": [ARCHITECTURES[network]], "model_type": "electra",
            "vocab_size": cfg.vocab_size, "embedding_size": cfg.embedding_size,
            "hidden_size": hidden, "num_hidden_layers": cfg.num_layers,
            "num_attention_heads": heads, "intermediate_size": ffn, "hidden_act": "gelu",
            "hidden_dropout_prob": cfg.hidden_dropout,
            "attention_probs_dropout_prob": cfg.attention_dropout,
            "max_position_embeddings": cfg.max_position_embeddings,
            "type_vocab_size": cfg.type_vocab_size, "initializer_range": cfg.initializer_range,
            "layer_norm_eps": cfg.layer_norm_eps, "pad_token_id": pad_token_id,
            "position_embedding_type": "absolute", "tie_word_embeddings": True}


def _check_dir(path: str, overwrite: bool) -> None:
    if tf.io.gfile.exists(path) and tf.io.gfile.listdir(path) and not overwrite:
        raise convert.ConversionError(f"{path} exists and is not empty; pass --overwrite")
    tf.io.gfile.makedirs(path)


def save_hf_directory(model: ElectraPretrainer, output_dir: str, vocab: Vocab | None = None,
                      lower_case: bool = True, overwrite: bool = False) -> dict[str, str]:
    """Writes <output_dir>/{discriminator,generator} for transformers; returns their paths."""
    from safetensors.numpy import save

    if vocab is not None and vocab.size != model.config.model.vocab_size:
        raise convert.ConversionError(f"{vocab.path} has {vocab.size} tokens but the model's "
                                      f"vocab_size is {model.config.model.vocab_size}")
    states = {"discriminator": convert.discriminator_variables(model.discriminator),
              "generator": convert.generator_variables(model.generator)}
    paths = {}
    for network, variables in states.items():
        path = f"{output_dir}/{network}"
        _check_dir(path, overwrite)
        state = {k: np.ascontiguousarray(v) for k, v in convert.to_hf_state(variables).items()}
        pad = vocab.pad_id if vocab is not None else 0
        write_atomic(f"{path}/{WEIGHTS}", save(state, metadata={"format": "pt"}))
        config = hf_config(model.config.model, network, pad)
        write_atomic(f"{path}/config.json", json.dumps(config, indent=2).encode("utf-8"))
        if vocab is not None:
            write_atomic(f"{path}/vocab.txt", "".join(t + "\n" for t in vocab.tokens).encode())
            tokenizer = {"tokenizer_class": "ElectraTokenizer", "do_lower_case": lower_case,
                         "strip_accents": None, "model_max_length": 512}
            write_atomic(f"{path}/tokenizer_config.json", json.dumps(tokenizer).encode())
        paths[network] = path
    return paths


def read_hf_directory(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """A transformers model directory -> (config.json dict, state dict of numpy arrays)."""
    if not tf.io.gfile.exists(f"{path}/config.json"):
        raise convert.ConversionError(f"{path}: no config.json (not a transformers directory)")
    with tf.io.gfile.GFile(f"{path}/config.json") as f:
        config = json.load(f)
    if tf.io.gfile.exists(f"{path}/{WEIGHTS}"):
        from safetensors.numpy import load

        with tf.io.gfile.GFile(f"{path}/{WEIGHTS}", "rb") as f:
            state = load(f.read())
    elif tf.io.gfile.exists(f"{path}/{TORCH_WEIGHTS}"):
        import torch  # only for the older .bin format

        state = {k: v.numpy() for k, v in torch.load(f"{path}/{TORCH_WEIGHTS}",
                                                     map_location="cpu").items()}
    else:
        raise convert.ConversionError(f"{path}: neither {WEIGHTS} nor {TORCH_WEIGHTS} found")
    return config, state


def _config_value(config: dict, key: str, path: str):
    if key not in config:
        raise convert.ConversionError(f"{path}/config.json: missing '{key}'")
    return config[key]


def config_from_hf(disc: dict, gen: dict | None = None, path: str = "<hf>") -> ModelConfig:
    """Our ModelConfig from transformers' ElectraConfig dicts (the generator's sets its width)."""
    if disc.get("model_type") != "electra":
        raise convert.ConversionError(f"{path}/config.json: model_type "
                                      f"{disc.get('model_type')!r}, expected 'electra'")
    if disc.get("hidden_act", "gelu") != "gelu":
        raise convert.ConversionError(f"{path}/config.json: hidden_act {disc['hidden_act']!r}; "
                                      "ELECTRA (and this model) use the exact 'gelu'")
    v = lambda key: _config_value(disc, key, path)  # noqa: E731
    hidden = v("hidden_size")
    fraction = 0.25
    if gen is not None:
        fraction = _config_value(gen, "hidden_size", path) / hidden
    cfg = ModelConfig(vocab_size=v("vocab_size"), embedding_size=v("embedding_size"),
                      hidden_size=hidden, num_layers=v("num_hidden_layers"),
                      num_heads=v("num_attention_heads"),
                      intermediate_size=v("intermediate_size"), generator_fraction=fraction,
                      max_position_embeddings=v("max_position_embeddings"),
                      type_vocab_size=v("type_vocab_size"),
                      hidden_dropout=float(v("hidden_dropout_prob")),
                      attention_dropout=float(v("attention_probs_dropout_prob")),
                      initializer_range=float(v("initializer_range")),
                      layer_norm_eps=float(v("layer_norm_eps")))
    if gen is not None:
        expected = (cfg.generator_hidden_size, cfg.generator_num_heads,
                    cfg.generator_intermediate_size, cfg.num_layers)
        got = tuple(gen.get(k) for k in ("hidden_size", "num_attention_heads",
                                         "intermediate_size", "num_hidden_layers"))
        if got != expected:
            raise convert.ConversionError(
                f"{path}: generator (hidden, heads, FFN, layers) = {got}; this model derives "
                f"{expected} from the discriminator (the official get_generator_config)")
    return cfg


def load_hf_directory(discriminator_dir: str, generator_dir: str | None = None
                      ) -> ElectraPretrainer:
    """Builds our pretrainer from transformers directories (the generator's is optional)."""
    disc_config, disc_state = read_hf_directory(discriminator_dir)
    gen_config, gen_state = (read_hf_directory(generator_dir) if generator_dir
                             else (None, None))
    model = build_pretrainer(full_config(config_from_hf(disc_config, gen_config,
                                                        discriminator_dir)))
    convert.load_hf_weights(model, disc_state, gen_state, source=discriminator_dir)
    return model


def keras_hub_backbone(disc: Discriminator, dtype: str | None = None):
    """keras_hub.models.ElectraBackbone holding our discriminator's encoder weights.

    Differences (see the module docstring): tanh GELU in its FFN, an extra untrained pooler.
    Inputs there are named token_ids / segment_ids / padding_mask.
    """
    import keras_hub

    cfg = disc.cfg
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=cfg.vocab_size, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
        hidden_dim=cfg.hidden_size, embedding_dim=cfg.embedding_size,
        intermediate_dim=cfg.intermediate_size, dropout=cfg.hidden_dropout,
        max_sequence_length=cfg.max_position_embeddings, num_segments=cfg.type_vocab_size,
        dtype=dtype)
    encoder = disc.encoder
    emb = encoder.embeddings
    pairs = [(backbone.get_layer("token_embedding").embeddings, emb.word_embeddings),
             (backbone.get_layer("position_embedding").position_embeddings,
              emb.position_embeddings),
             (backbone.get_layer("segment_embedding").embeddings, emb.token_type_embeddings),
             (backbone.get_layer("embeddings_layer_norm").gamma, emb.layer_norm.gamma),
             (backbone.get_layer("embeddings_layer_norm").beta, emb.layer_norm.beta)]
    if encoder.embeddings_project is not None:
        project = backbone.get_layer("embeddings_projection")
        pairs += [(project.kernel, encoder.embeddings_project.kernel),
                  (project.bias, encoder.embeddings_project.bias)]
    for i, block in enumerate(encoder.blocks):
        layer = backbone.get_layer(f"transformer_layer_{i}")
        attention = layer._self_attention_layer
        for theirs, ours in ((attention.query_dense, block.query), (attention.key_dense,
                             block.key), (attention.value_dense, block.value)):
            pairs += [(theirs.kernel, ours.kernel), (theirs.bias, ours.bias)]
        pairs += [(attention.output_dense.kernel, block.attention_output.kernel),
                  (attention.output_dense.bias, block.attention_output.bias),
                  (layer._self_attention_layer_norm.gamma, block.attention_layer_norm.gamma),
                  (layer._self_attention_layer_norm.beta, block.attention_layer_norm.beta),
                  (layer._feedforward_intermediate_dense.kernel, block.intermediate.kernel),
                  (layer._feedforward_intermediate_dense.bias, block.intermediate.bias),
                  (layer._feedforward_output_dense.kernel, block.output_dense.kernel),
                  (layer._feedforward_output_dense.bias, block.output_dense.bias),
                  (layer._feedforward_layer_norm.gamma, block.output_layer_norm.gamma),
                  (layer._feedforward_layer_norm.beta, block.output_layer_norm.beta)]
    for theirs, ours in pairs:
        value = np.asarray(ours.numpy())
        # keras-hub's attention kernels are [H, A, H/A] / [A, H/A, H]: reshapes of ours.
        theirs.assign(value.reshape(tuple(theirs.shape)))
    return backbone
