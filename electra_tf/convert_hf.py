"""Hugging Face (transformers) directories: config.json + model.safetensors, in and out.

Out: a pretrainer is written as two transformers-loadable directories:
  <dir>/discriminator   ElectraForPreTraining (encoder + replaced-token-detection head)
  <dir>/generator       ElectraForMaskedLM (its word table is tied to the embeddings, so the
                        file stores it once, as transformers does)
each with vocab.txt and tokenizer_config.json when a vocabulary is given, so
`AutoTokenizer.from_pretrained(dir)` works too. Only numpy and safetensors are needed: no torch.

In: an ELECTRA directory of any transformers class (ElectraForPreTraining, ElectraModel,
ElectraForSequenceClassification, ...) and optionally the generator's (ElectraForMaskedLM); or
a BERT-family one (BertModel, BertForMaskedLM, BertForPreTraining, ..., and the
sentence-transformers layout with modules.json, whose Transformer module is read and whose
Pooling module, when it takes the [CLS] vector or the mean, sets the model's `pooling`). A BERT
encoder is the discriminator's encoder with embedding size = hidden size; its pooler and
pretraining heads are listed as skipped, and the discriminator head and generator start fresh
(the generator `generator_fraction` wide, with its own `embeddings_project`), so
`run_pretraining.py --init_checkpoint` continues with ELECTRA's objective. Weights come from
model.safetensors (sharded ones too, any float dtype) or, when torch is installed,
pytorch_model.bin.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import tensorflow as tf

from electra_tf import convert
from electra_tf.atomic import write_atomic
from electra_tf.config import POOLINGS, SIZES, ModelConfig, nearest_size
from electra_tf.convert_tf1 import full_config
from electra_tf.models import ElectraPretrainer, build_pretrainer
from electra_tf.tokenization import Vocab

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"  # a sharded checkpoint's file list
TORCH_WEIGHTS = "pytorch_model.bin"
SENTENCE_TRANSFORMERS = "modules.json"
ARCHITECTURES = {"discriminator": "ElectraForPreTraining", "generator": "ElectraForMaskedLM"}
# transformers' base-model attribute per model_type: the prefix of its keys in the heads' classes
BASE_PREFIX = {"electra": "electra.", "bert": "bert."}
BASE_PARTS = ("embeddings.", "embeddings_project.", "encoder.", "pooler.")  # bare base models
# Not ELECTRA's: BERT's pooler, MLM/NSP heads (cls.), task heads; buffers (position_ids)
EXTRAS = ("pooler.", "cls.", "classifier.", "qa_outputs.", "generator_predictions.",
          "generator_lm_head.", "embeddings.position_ids", "embeddings.token_type_ids")
_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
           "BF16": tf.bfloat16.as_numpy_dtype, "I64": np.int64, "I32": np.int32, "I16": np.int16,
           "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


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


def model_directory(path: str) -> tuple[str, tuple[str, ...], str]:
    """The transformers model directory inside `path`: itself, or the Transformer module of a
    sentence-transformers layout (modules.json). Returns it, the modules left out, and the
    pooling the layout's Pooling module asks for ("cls" when there is none to follow)."""
    if not tf.io.gfile.exists(f"{path}/{SENTENCE_TRANSFORMERS}"):
        return path, (), "cls"
    with tf.io.gfile.GFile(f"{path}/{SENTENCE_TRANSFORMERS}") as f:
        modules = json.load(f)
    # "models.Transformer" (older releases: "models.BERT") holds the encoder
    encoders = [m for m in modules if m.get("type", "").endswith((".Transformer", ".BERT"))]
    if len(encoders) != 1:
        raise convert.ConversionError(f"{path}/{SENTENCE_TRANSFORMERS}: expected one "
                                      f"Transformer module, found {len(encoders)}")
    sub = encoders[0].get("path", "")
    pooling, others = "cls", []
    for m in modules:
        if m is encoders[0]:
            continue
        kind = m.get("type", "").rsplit(".", 1)[-1]
        if kind == "Pooling":
            mode = pooling_mode(f"{path}/{m.get('path', '')}".rstrip("/"))
            if mode in POOLINGS:
                pooling = mode
                continue  # followed: fine-tuning heads read the text this way
            kind = f"Pooling ({mode}: not one of {POOLINGS}; fine-tuning reads [CLS])"
        others.append(f"sentence-transformers {kind} module")
    return (f"{path}/{sub}" if sub else path), tuple(others), pooling


def pooling_mode(module_dir: str) -> str:
    """A sentence-transformers Pooling module's mode from its config.json: "cls", "mean", or
    the name of another (max, weightedmean, lasttoken, mean_sqrt_len, or several at once)."""
    config_path = f"{module_dir}/config.json"
    if not tf.io.gfile.exists(config_path):
        raise convert.ConversionError(f"{config_path}: not found (the Pooling module's "
                                      "settings, named in modules.json)")
    with tf.io.gfile.GFile(config_path) as f:
        config = json.load(f)
    modes = [k[len("pooling_mode_"):].removesuffix("_tokens").removesuffix("_token")
             for k, on in sorted(config.items()) if k.startswith("pooling_mode_") and on is True]
    return modes[0] if len(modes) == 1 else "+".join(modes) or "none"


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    from safetensors import deserialize

    with tf.io.gfile.GFile(path, "rb") as f:
        tensors = deserialize(f.read())
    state = {}
    for name, tensor in tensors:
        if tensor["dtype"] not in _DTYPES:
            raise convert.ConversionError(f"{path}: '{name}' has dtype {tensor['dtype']}, "
                                          f"expected one of {sorted(_DTYPES)}")
        state[name] = np.frombuffer(tensor["data"], _DTYPES[tensor["dtype"]]).reshape(
            tensor["shape"])
    return state


def _read_torch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise convert.ConversionError(
            f"{path}: PyTorch weights need torch to read (pip install torch), or save the "
            f"model as {WEIGHTS} (transformers' save_pretrained does by default)") from None
    with tf.io.gfile.GFile(path, "rb") as f:
        state = torch.load(f, map_location="cpu", weights_only=True)
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy()
            for k, v in state.items()}


def read_hf_directory(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """A transformers model directory -> (config.json dict, state dict of numpy arrays)."""
    if not tf.io.gfile.exists(f"{path}/config.json"):
        raise convert.ConversionError(f"{path}: no config.json (not a transformers directory)")
    with tf.io.gfile.GFile(f"{path}/config.json") as f:
        config = json.load(f)
    if tf.io.gfile.exists(f"{path}/{WEIGHTS}"):
        state = _read_safetensors(f"{path}/{WEIGHTS}")
    elif tf.io.gfile.exists(f"{path}/{WEIGHTS_INDEX}"):
        with tf.io.gfile.GFile(f"{path}/{WEIGHTS_INDEX}") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state = {k: v for shard in shards for k, v in _read_safetensors(f"{path}/{shard}").items()}
    elif tf.io.gfile.exists(f"{path}/{TORCH_WEIGHTS}"):
        state = _read_torch(f"{path}/{TORCH_WEIGHTS}")
    else:
        raise convert.ConversionError(f"{path}: neither {WEIGHTS} nor {TORCH_WEIGHTS} found")
    # early BERT ports name LayerNorm's parameters gamma/beta (transformers renames them too)
    renamed = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
        "LayerNorm.beta", "LayerNorm.bias"): v for k, v in state.items()}
    return config, renamed


def _config_value(config: dict, key: str, path: str):
    if key not in config:
        raise convert.ConversionError(f"{path}/config.json: missing '{key}'")
    return config[key]


def config_from_hf(disc: dict, gen: dict | None = None, path: str = "<hf>",
                   generator_fraction: float | None = None) -> ModelConfig:
    """Our ModelConfig from transformers' ElectraConfig or BertConfig dicts.

    The generator's config sets its width; without one it is `generator_fraction` wide, else
    the nearest published size's fraction. BERT: embedding size = hidden size.
    """
    kind = disc.get("model_type")
    if kind not in BASE_PREFIX:
        raise convert.ConversionError(
            f"{path}/config.json: model_type {kind!r}, expected 'electra' or 'bert' (ELECTRA "
            "or a BERT-family encoder: BertModel, BertForMaskedLM, sentence-transformers ...)")
    if disc.get("hidden_act", "gelu") != "gelu":
        raise convert.ConversionError(f"{path}/config.json: hidden_act {disc['hidden_act']!r}; "
                                      "ELECTRA (and this model) use the exact 'gelu'")
    if gen is not None and kind != "electra":
        raise convert.ConversionError(f"{path}: a generator goes with an ELECTRA "
                                      f"discriminator, not a {kind!r} model")
    v = lambda key: _config_value(disc, key, path)  # noqa: E731
    hidden = v("hidden_size")
    cfg = ModelConfig(vocab_size=v("vocab_size"),
                      embedding_size=v("embedding_size") if kind == "electra" else hidden,
                      hidden_size=hidden, num_layers=v("num_hidden_layers"),
                      num_heads=v("num_attention_heads"),
                      intermediate_size=v("intermediate_size"),
                      max_position_embeddings=v("max_position_embeddings"),
                      type_vocab_size=v("type_vocab_size"),
                      hidden_dropout=float(v("hidden_dropout_prob")),
                      attention_dropout=float(v("attention_probs_dropout_prob")),
                      initializer_range=float(v("initializer_range")),
                      layer_norm_eps=float(v("layer_norm_eps")))
    if gen is None:
        fraction = generator_fraction or SIZES[nearest_size(cfg)].model.generator_fraction
        return dataclasses.replace(cfg, generator_fraction=fraction)
    cfg = dataclasses.replace(cfg, generator_fraction=_config_value(gen, "hidden_size", path)
                              / hidden)
    expected = (cfg.generator_hidden_size, cfg.generator_num_heads,
                cfg.generator_intermediate_size, cfg.num_layers)
    got = tuple(gen.get(k) for k in ("hidden_size", "num_attention_heads",
                                     "intermediate_size", "num_hidden_layers"))
    if got != expected:
        raise convert.ConversionError(
            f"{path}: generator (hidden, heads, FFN, layers) = {got}; this model derives "
            f"{expected} from the discriminator (the official get_generator_config)")
    return cfg


def _base_prefix(state: dict, kind: str) -> str:
    """The prefix of the base model's keys: 'electra.' / 'bert.' in the task and pretraining
    classes, '' in the bare ElectraModel / BertModel."""
    prefix = BASE_PREFIX[kind]
    return prefix if any(k.startswith(prefix) for k in state) else ""


def import_hf_directory(discriminator_dir: str, generator_dir: str | None = None,
                        generator_fraction: float | None = None
                        ) -> tuple[ElectraPretrainer, convert.ImportReport]:
    """Builds our pretrainer from a transformers ELECTRA or BERT-family directory (and an
    ELECTRA generator's, optional) and loads it; the report lists what was skipped and what
    starts fresh."""
    directory, modules, pooling = model_directory(discriminator_dir)
    disc_config, disc_state = read_hf_directory(directory)
    gen_config, gen_state = (read_hf_directory(generator_dir) if generator_dir
                             else (None, None))
    kind = disc_config.get("model_type")
    cfg = dataclasses.replace(config_from_hf(disc_config, gen_config, directory,
                                             generator_fraction), pooling=pooling)
    model = build_pretrainer(full_config(cfg))
    prefix = _base_prefix(disc_state, kind)
    name_fn = convert.rebased(convert.hf_name, "electra.", prefix)
    used, fresh = convert.load_discriminator(model, disc_state, f"{directory} (discriminator)",
                                             name_fn)
    if gen_state is not None:
        convert.assign_by_name(convert.generator_variables(model.generator,
                                                           with_embeddings=False),
                               gen_state, f"{generator_dir} (generator)", convert.hf_name)
    extras = tuple(f"{prefix}{e}" if e.startswith(BASE_PARTS) else e for e in EXTRAS)
    report = convert.make_report(directory, disc_state, used, 0, gen_state is not None, fresh,
                                 extras)
    if modules:
        report = dataclasses.replace(report, ignored=report.ignored + modules)
    return model, report
