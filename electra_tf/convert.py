"""Weights in and out: canonical variable names and the one explicit map to Hugging Face names.

Canonical names are ours and structural (not Keras paths, which depend on build order):
  embeddings/{word_embeddings,position_embeddings,token_type_embeddings,layer_norm/gamma,...}
  {discriminator,generator}/embeddings_project/{kernel,bias}          (only when E != H)
  {discriminator,generator}/layer_{i}/{query,key,value,attention_output,intermediate,output}/...
  {discriminator,generator}/layer_{i}/{attention_layer_norm,output_layer_norm}/{gamma,beta}
  discriminator/discriminator_predictions/{dense,logits}/{kernel,bias}
  generator/generator_predictions/{dense/kernel,dense/bias,layer_norm/gamma,layer_norm/beta,
                                   output_bias}
Hugging Face (transformers' ElectraForPreTraining / ElectraForMaskedLM state dicts) stores
Linear weights as [out, in]: kernels are transposed on the way.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from electra_tf.models import Discriminator, ElectraPretrainer, Encoder, Generator


class ConversionError(ValueError):
    """A checkpoint does not match the model: names the variable and what was expected."""


def _dense(prefix: str, layer) -> dict:
    return {f"{prefix}/kernel": layer.kernel, f"{prefix}/bias": layer.bias}


def _norm(prefix: str, layer) -> dict:
    return {f"{prefix}/gamma": layer.gamma, f"{prefix}/beta": layer.beta}


def _encoder_variables(part: str, encoder: Encoder) -> dict:
    out = {}
    if encoder.embeddings_project is not None:
        out.update(_dense(f"{part}/embeddings_project", encoder.embeddings_project))
    for i, block in enumerate(encoder.blocks):
        for layer in (block.query, block.key, block.value, block.attention_output,
                      block.intermediate, block.output_dense):
            out.update(_dense(f"{part}/layer_{i}/{layer.name}", layer))
        for layer in (block.attention_layer_norm, block.output_layer_norm):
            out.update(_norm(f"{part}/layer_{i}/{layer.name}", layer))
    return out


def _embedding_variables(encoder: Encoder) -> dict:
    emb = encoder.embeddings
    return {"embeddings/word_embeddings": emb.word_embeddings,
            "embeddings/position_embeddings": emb.position_embeddings,
            "embeddings/token_type_embeddings": emb.token_type_embeddings,
            **_norm("embeddings/layer_norm", emb.layer_norm)}


def discriminator_variables(disc: Discriminator, with_embeddings: bool = True) -> dict:
    """Canonical name -> variable for a discriminator (encoder + RTD head)."""
    out = _embedding_variables(disc.encoder) if with_embeddings else {}
    out.update(_encoder_variables("discriminator", disc.encoder))
    head = disc.head
    out.update(_dense("discriminator/discriminator_predictions/dense", head.dense))
    out.update(_dense("discriminator/discriminator_predictions/logits", head.logits))
    return out


def generator_variables(gen: Generator, with_embeddings: bool = True) -> dict:
    """Canonical name -> variable for a generator (encoder + tied MLM head's own variables)."""
    out = _embedding_variables(gen.encoder) if with_embeddings else {}
    out.update(_encoder_variables("generator", gen.encoder))
    head = gen.head
    out.update(_dense("generator/generator_predictions/dense", head.dense))
    out.update(_norm("generator/generator_predictions/layer_norm", head.layer_norm))
    out["generator/generator_predictions/output_bias"] = head.output_bias
    return out


def pretrainer_variables(model: ElectraPretrainer) -> dict:
    """Canonical name -> variable for the whole pretrainer; the shared embeddings appear once."""
    return {**discriminator_variables(model.discriminator),
            **generator_variables(model.generator, with_embeddings=False)}


# --- Hugging Face names ------------------------------------------------------------------------

_HF_BLOCK = {  # ours -> (HF suffix under electra.encoder.layer.{i}., transpose)
    "query/kernel": ("attention.self.query.weight", True),
    "query/bias": ("attention.self.query.bias", False),
    "key/kernel": ("attention.self.key.weight", True),
    "key/bias": ("attention.self.key.bias", False),
    "value/kernel": ("attention.self.value.weight", True),
    "value/bias": ("attention.self.value.bias", False),
    "attention_output/kernel": ("attention.output.dense.weight", True),
    "attention_output/bias": ("attention.output.dense.bias", False),
    "attention_layer_norm/gamma": ("attention.output.LayerNorm.weight", False),
    "attention_layer_norm/beta": ("attention.output.LayerNorm.bias", False),
    "intermediate/kernel": ("intermediate.dense.weight", True),
    "intermediate/bias": ("intermediate.dense.bias", False),
    "output/kernel": ("output.dense.weight", True),
    "output/bias": ("output.dense.bias", False),
    "output_layer_norm/gamma": ("output.LayerNorm.weight", False),
    "output_layer_norm/beta": ("output.LayerNorm.bias", False),
}
_HF_FIXED = {  # ours (without the part prefix) -> (HF key, transpose)
    "embeddings/word_embeddings": ("electra.embeddings.word_embeddings.weight", False),
    "embeddings/position_embeddings": ("electra.embeddings.position_embeddings.weight", False),
    "embeddings/token_type_embeddings": ("electra.embeddings.token_type_embeddings.weight", False),
    "embeddings/layer_norm/gamma": ("electra.embeddings.LayerNorm.weight", False),
    "embeddings/layer_norm/beta": ("electra.embeddings.LayerNorm.bias", False),
    "embeddings_project/kernel": ("electra.embeddings_project.weight", True),
    "embeddings_project/bias": ("electra.embeddings_project.bias", False),
    "discriminator_predictions/dense/kernel": ("discriminator_predictions.dense.weight", True),
    "discriminator_predictions/dense/bias": ("discriminator_predictions.dense.bias", False),
    "discriminator_predictions/logits/kernel": (
        "discriminator_predictions.dense_prediction.weight", True),
    "discriminator_predictions/logits/bias": ("discriminator_predictions.dense_prediction.bias",
                                              False),
    "generator_predictions/dense/kernel": ("generator_predictions.dense.weight", True),
    "generator_predictions/dense/bias": ("generator_predictions.dense.bias", False),
    "generator_predictions/layer_norm/gamma": ("generator_predictions.LayerNorm.weight", False),
    "generator_predictions/layer_norm/beta": ("generator_predictions.LayerNorm.bias", False),
    "generator_predictions/output_bias": ("generator_lm_head.bias", False),
}


def hf_name(canonical: str) -> tuple[str, bool]:
    """Our canonical name -> (HF state-dict key in that network's model, transpose?).

    The discriminator's names map into ElectraForPreTraining, the generator's into
    ElectraForMaskedLM; `embeddings/*` exist in both.
    """
    parts = canonical.split("/")
    if parts[0] in ("discriminator", "generator"):
        parts = parts[1:]
    if parts[0].startswith("layer_"):
        index = int(parts[0][len("layer_"):])
        suffix, transpose = _HF_BLOCK["/".join(parts[1:])]
        return f"electra.encoder.layer.{index}.{suffix}", transpose
    rest = "/".join(parts)
    if rest not in _HF_FIXED:
        raise ConversionError(f"no Hugging Face name for variable '{canonical}'")
    return _HF_FIXED[rest]


def _assign(variables: Mapping, source: Mapping[str, np.ndarray], where: str) -> None:
    for name, variable in variables.items():
        key, transpose = hf_name(name)
        if key not in source:
            raise ConversionError(f"{where}: missing '{key}' (for our '{name}')")
        value = np.asarray(source[key])
        value = value.T if transpose else value
        if tuple(value.shape) != tuple(variable.shape):
            raise ConversionError(f"{where}: '{key}' has shape {tuple(value.shape)}, expected "
                                  f"{tuple(variable.shape)} for our '{name}'")
        variable.assign(value.astype(np.float32))


def load_hf_weights(model: ElectraPretrainer, discriminator_state: Mapping[str, np.ndarray],
                    generator_state: Mapping[str, np.ndarray] | None = None,
                    source: str = "Hugging Face weights") -> None:
    """Copies HF state dicts (name -> array) into our model through the name map.

    The shared embeddings come from the discriminator (ELECTRA's released checkpoints share
    them, so the generator's copy is identical).
    """
    _assign(discriminator_variables(model.discriminator), discriminator_state,
            f"{source} (discriminator)")
    if generator_state is not None:
        _assign(generator_variables(model.generator, with_embeddings=False), generator_state,
                f"{source} (generator)")


def to_hf_state(variables: Mapping) -> dict[str, np.ndarray]:
    """Canonical variables -> HF state dict arrays (kernels transposed to [out, in])."""
    out = {}
    for name, variable in variables.items():
        key, transpose = hf_name(name)
        value = np.asarray(variable.numpy())
        out[key] = value.T.copy() if transpose else value
    return out
