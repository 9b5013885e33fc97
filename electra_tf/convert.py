"""Weights in and out: canonical variable names and the one explicit map to Hugging Face names.

Canonical names are ours and structural (not Keras paths, which depend on build order):
  embeddings/{word_embeddings,position_embeddings,token_type_embeddings,layer_norm/gamma,...}
  {discriminator,generator}/embeddings_project/{kernel,bias}          (only when E != H)
  {discriminator,generator}/layer_{i}/{query,key,value,attention_output,intermediate,output}/...
  {discriminator,generator}/layer_{i}/{attention_layer_norm,output_layer_norm}/{gamma,beta}
  discriminator/discriminator_predictions/{dense,logits}/{kernel,bias}
  generator/generator_predictions/{dense/kernel,dense/bias,layer_norm/gamma,layer_norm/beta,
                                   output_bias}
One table (`_BLOCK`, `_FIXED`) maps each to its Hugging Face key and its official TF1 name.
Hugging Face (transformers' ElectraForPreTraining / ElectraForMaskedLM state dicts) stores
Linear weights as [out, in]: kernels are transposed on the way. Reading and writing the files:
convert_tf1.py (official TF1 ELECTRA and BERT checkpoints, our warm-start format),
convert_hf.py (transformers ELECTRA and BERT directories) and convert_keras_hub.py (keras-hub
presets).

BERT-family encoders are ELECTRA's discriminator encoder with embedding size = hidden size (no
`embeddings_project`): the same table serves them, with their base model's prefix (`bert/`,
`bert.` or none) in place of ELECTRA's (`electra/`, `electra.`; see `rebased`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
from absl import logging

from electra_tf.errors import ConversionError
from electra_tf.models import Discriminator, ElectraPretrainer, Encoder, Generator


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


def encoder_variables(disc: Discriminator) -> dict:
    """Canonical name -> variable for the discriminator's encoder (embeddings included), without
    its RTD head: what a BERT-family checkpoint or a keras-hub backbone provides."""
    return {**_embedding_variables(disc.encoder),
            **_encoder_variables("discriminator", disc.encoder)}


def head_variables(disc: Discriminator) -> dict:
    """Canonical name -> variable for the discriminator's replaced-token-detection head."""
    head = disc.head
    return {**_dense("discriminator/discriminator_predictions/dense", head.dense),
            **_dense("discriminator/discriminator_predictions/logits", head.logits)}


def discriminator_variables(disc: Discriminator, with_embeddings: bool = True) -> dict:
    """Canonical name -> variable for a discriminator (encoder + RTD head)."""
    out = _embedding_variables(disc.encoder) if with_embeddings else {}
    out.update(_encoder_variables("discriminator", disc.encoder))
    out.update(head_variables(disc))
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


# --- The name map: ours -> Hugging Face and official TF1 names ----------------------------------
# One table per scope. HF keys are relative to that network's transformers model
# (ElectraForPreTraining or ElectraForMaskedLM) and store Linear weights as [out, in]
# (transpose=True); TF1 names (google-research/electra) keep Keras' [in, out] layout.
# TF1 scopes: the discriminator's encoder is "electra", the generator's "generator"; the shared
# embeddings live under "electra/embeddings" (`untied_generator_embeddings=False`, the default).

_BLOCK = {  # ours -> (HF suffix under electra.encoder.layer.{i}., transpose,
            #          TF1 suffix under {scope}/encoder/layer_{i}/)
    "query/kernel": ("attention.self.query.weight", True, "attention/self/query/kernel"),
    "query/bias": ("attention.self.query.bias", False, "attention/self/query/bias"),
    "key/kernel": ("attention.self.key.weight", True, "attention/self/key/kernel"),
    "key/bias": ("attention.self.key.bias", False, "attention/self/key/bias"),
    "value/kernel": ("attention.self.value.weight", True, "attention/self/value/kernel"),
    "value/bias": ("attention.self.value.bias", False, "attention/self/value/bias"),
    "attention_output/kernel": ("attention.output.dense.weight", True,
                                "attention/output/dense/kernel"),
    "attention_output/bias": ("attention.output.dense.bias", False,
                              "attention/output/dense/bias"),
    "attention_layer_norm/gamma": ("attention.output.LayerNorm.weight", False,
                                   "attention/output/LayerNorm/gamma"),
    "attention_layer_norm/beta": ("attention.output.LayerNorm.bias", False,
                                  "attention/output/LayerNorm/beta"),
    "intermediate/kernel": ("intermediate.dense.weight", True, "intermediate/dense/kernel"),
    "intermediate/bias": ("intermediate.dense.bias", False, "intermediate/dense/bias"),
    "output/kernel": ("output.dense.weight", True, "output/dense/kernel"),
    "output/bias": ("output.dense.bias", False, "output/dense/bias"),
    "output_layer_norm/gamma": ("output.LayerNorm.weight", False, "output/LayerNorm/gamma"),
    "output_layer_norm/beta": ("output.LayerNorm.bias", False, "output/LayerNorm/beta"),
}
_FIXED = {  # ours (without the part prefix) -> (HF key, transpose, TF1 name; "{scope}" = the
            # network's TF1 scope)
    "embeddings/word_embeddings": ("electra.embeddings.word_embeddings.weight", False,
                                   "electra/embeddings/word_embeddings"),
    "embeddings/position_embeddings": ("electra.embeddings.position_embeddings.weight", False,
                                       "electra/embeddings/position_embeddings"),
    "embeddings/token_type_embeddings": ("electra.embeddings.token_type_embeddings.weight",
                                         False, "electra/embeddings/token_type_embeddings"),
    "embeddings/layer_norm/gamma": ("electra.embeddings.LayerNorm.weight", False,
                                    "electra/embeddings/LayerNorm/gamma"),
    "embeddings/layer_norm/beta": ("electra.embeddings.LayerNorm.bias", False,
                                   "electra/embeddings/LayerNorm/beta"),
    "embeddings_project/kernel": ("electra.embeddings_project.weight", True,
                                  "{scope}/embeddings_project/kernel"),
    "embeddings_project/bias": ("electra.embeddings_project.bias", False,
                                "{scope}/embeddings_project/bias"),
    "discriminator_predictions/dense/kernel": ("discriminator_predictions.dense.weight", True,
                                               "discriminator_predictions/dense/kernel"),
    "discriminator_predictions/dense/bias": ("discriminator_predictions.dense.bias", False,
                                             "discriminator_predictions/dense/bias"),
    "discriminator_predictions/logits/kernel": (
        "discriminator_predictions.dense_prediction.weight", True,
        "discriminator_predictions/dense_1/kernel"),
    "discriminator_predictions/logits/bias": (
        "discriminator_predictions.dense_prediction.bias", False,
        "discriminator_predictions/dense_1/bias"),
    "generator_predictions/dense/kernel": ("generator_predictions.dense.weight", True,
                                           "generator_predictions/dense/kernel"),
    "generator_predictions/dense/bias": ("generator_predictions.dense.bias", False,
                                         "generator_predictions/dense/bias"),
    "generator_predictions/layer_norm/gamma": ("generator_predictions.LayerNorm.weight", False,
                                               "generator_predictions/LayerNorm/gamma"),
    "generator_predictions/layer_norm/beta": ("generator_predictions.LayerNorm.bias", False,
                                              "generator_predictions/LayerNorm/beta"),
    "generator_predictions/output_bias": ("generator_lm_head.bias", False,
                                          "generator_predictions/output_bias"),
}
_TF1_SCOPE = {"discriminator": "electra", "generator": "generator"}


def _lookup(canonical: str) -> tuple[str, int | None, tuple]:
    """canonical -> (network, layer index or None, table row)."""
    parts = canonical.split("/")
    part = "discriminator"  # the shared embeddings: the discriminator's scope in TF1
    if parts[0] in _TF1_SCOPE:
        part, parts = parts[0], parts[1:]
    row, index = _FIXED.get("/".join(parts)), None
    if parts[0].startswith("layer_"):
        row, index = _BLOCK.get("/".join(parts[1:])), int(parts[0][len("layer_"):])
    if row is None:
        raise ConversionError(f"no name-map entry for variable '{canonical}'")
    return part, index, row


def hf_name(canonical: str) -> tuple[str, bool]:
    """Our canonical name -> (HF state-dict key in that network's model, transpose?).

    The discriminator's names map into ElectraForPreTraining, the generator's into
    ElectraForMaskedLM; `embeddings/*` exist in both.
    """
    _, index, (key, transpose, _) = _lookup(canonical)
    if index is not None:
        key = f"electra.encoder.layer.{index}.{key}"
    return key, transpose


def tf1_name(canonical: str) -> str:
    """Our canonical name -> the official TF1 checkpoint's variable name (same [in, out])."""
    part, index, (_, _, name) = _lookup(canonical)
    scope = _TF1_SCOPE[part]
    if index is not None:
        return f"{scope}/encoder/layer_{index}/{name}"
    return name.format(scope=scope)


NameFn = Callable[[str], tuple[str, bool]]  # our canonical name -> (source key, transpose?)


def rebased(name_fn: NameFn, ours: str, theirs: str) -> NameFn:
    """`name_fn` with the base model's prefix `ours` replaced by `theirs` (e.g. 'electra.' ->
    'bert.' or '' for transformers' BertModel; 'electra/' -> 'bert/' for TF1 BERT)."""
    def fn(name: str) -> tuple[str, bool]:
        key, transpose = name_fn(name)
        return (theirs + key[len(ours):] if key.startswith(ours) else key), transpose

    return fn


def assign_by_name(variables: Mapping, source: Mapping[str, np.ndarray], where: str,
                   name_fn: NameFn) -> set[str]:
    """Copies source arrays into our variables through a name map; returns the keys used.

    name_fn: our canonical name -> (source key, transpose?). Raises ConversionError naming the
    key when one is missing or has the wrong shape; nothing is assigned in that case.
    """
    values = {}
    for name, variable in variables.items():
        key, transpose = name_fn(name)
        if key not in source:
            raise ConversionError(f"{where}: missing '{key}' (for our '{name}')")
        value = np.asarray(source[key])
        value = value.T if transpose else value
        if tuple(value.shape) != tuple(variable.shape):
            raise ConversionError(f"{where}: '{key}' has shape {tuple(value.shape)}, expected "
                                  f"{tuple(variable.shape)} for our '{name}'")
        values[name] = value.astype(np.float32)
    for name, variable in variables.items():
        variable.assign(values[name])
    return {name_fn(name)[0] for name in variables}


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What a conversion read: counts, what it left out and what starts fresh."""

    source: str
    loaded: int
    skipped: int  # optimizer slots and global_step
    unmatched: tuple[str, ...]  # source entries the name map does not cover (warned about)
    generator_loaded: bool
    ignored: tuple[str, ...] = ()  # known parts that are not ELECTRA's: pooler, NSP/MLM heads
    fresh: tuple[str, ...] = ()  # parts of our model the source lacks: freshly initialized
    note: str = ""  # how the source computes something differently

    def summary(self) -> str:
        text = (f"{self.source}: {self.loaded} tensors loaded, {self.skipped} optimizer/step "
                f"entries skipped, generator {'loaded' if self.generator_loaded else 'absent'}")
        for label, names in (("not part of ELECTRA, skipped", self.ignored),
                             ("unmatched", self.unmatched)):
            if names:
                text += f"; {len(names)} {label}: {', '.join(names[:10])}"
                text += " ..." if len(names) > 10 else ""
        if self.fresh:
            text += f"; initialized fresh: {', '.join(self.fresh)}"
        return text + (f"; note: {self.note}" if self.note else "")


def load_discriminator(model: ElectraPretrainer, state: Mapping[str, np.ndarray], where: str,
                       name_fn: NameFn) -> tuple[set[str], list[str]]:
    """Copies the discriminator's embeddings and encoder, and its RTD head when `state` holds
    one (a BERT-family encoder has none: it stays freshly initialized).

    Returns (the source keys used, the parts left fresh).
    """
    disc = model.discriminator
    used = assign_by_name(encoder_variables(disc), state, where, name_fn)
    head = head_variables(disc)
    if not any(name_fn(name)[0] in state for name in head):
        return used, ["discriminator head"]
    return used | assign_by_name(head, state, where, name_fn), []


def make_report(source: str, state: Mapping[str, np.ndarray], used: set[str], skipped: int,
                generator_loaded: bool, fresh: list[str],
                known_extras: tuple[str, ...] = ()) -> ImportReport:
    """The report of one import: unused source entries starting with one of `known_extras`
    (pooler, pretraining heads, buffers) are listed as ignored; any other is unmatched and
    logged."""
    unused = sorted(set(state) - used)
    ignored = tuple(n for n in unused if n.startswith(known_extras)) if known_extras else ()
    unmatched = tuple(n for n in unused if n not in ignored)
    if not generator_loaded:
        fresh = [*fresh, "generator"]
    report = ImportReport(source, len(used), skipped, unmatched, generator_loaded, ignored,
                          tuple(fresh))
    if unmatched:
        logging.warning("%s", report.summary())
    return report


def load_hf_weights(model: ElectraPretrainer, discriminator_state: Mapping[str, np.ndarray],
                    generator_state: Mapping[str, np.ndarray] | None = None,
                    source: str = "Hugging Face weights") -> None:
    """Copies HF state dicts (name -> array) into our model through the name map.

    The shared embeddings come from the discriminator (ELECTRA's released checkpoints share
    them, so the generator's copy is identical).
    """
    assign_by_name(discriminator_variables(model.discriminator), discriminator_state,
                   f"{source} (discriminator)", hf_name)
    if generator_state is not None:
        assign_by_name(generator_variables(model.generator, with_embeddings=False),
                       generator_state, f"{source} (generator)", hf_name)


def to_hf_state(variables: Mapping) -> dict[str, np.ndarray]:
    """Canonical variables -> HF state dict arrays (kernels transposed to [out, in])."""
    out = {}
    for name, variable in variables.items():
        key, transpose = hf_name(name)
        value = np.asarray(variable.numpy())
        out[key] = value.T.copy() if transpose else value
    return out


def to_tf1_state(variables: Mapping) -> dict[str, np.ndarray]:
    """Canonical variables -> {official TF1 name: array}."""
    return {tf1_name(name): np.asarray(v.numpy()) for name, v in variables.items()}
