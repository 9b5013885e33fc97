"""Typed configuration: frozen dataclasses, one table of published sizes, JSON round trip.

Every value is checked on construction; an error names the key and what was expected, so a
typo in a JSON file or a flag fails at once instead of training the wrong model.
Sources: the ELECTRA paper (Clark et al., 2020, tables 6-7) and the authors' code
(`configure_pretraining.py`, `get_generator_config`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, TypeVar

from electra_tf.errors import ConfigError

T = TypeVar("T")


def _require(ok: bool, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}': expected {expected}, got {value!r}")


def _positive_ints(cfg: Any, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = getattr(cfg, key)
        _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                 key, "a positive integer", value)


def _fractions(cfg: Any, keys: tuple[str, ...], low_open: bool = True) -> None:
    """Checks values in (0, 1] (or [0, 1) for dropout-like rates when low_open is False)."""
    for key in keys:
        value = getattr(cfg, key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if low_open:
            _require(number and 0.0 < value <= 1.0, key, "a fraction in (0, 1]", value)
        else:
            _require(number and 0.0 <= value < 1.0, key, "a rate in [0, 1)", value)


POOLINGS = ("cls", "mean")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The discriminator's shape; the generator's is derived from it (`generator_*` properties).

    The generator has the discriminator's depth and a `generator_fraction` of its width, with
    heads = max(1, hidden // 64) and FFN = 4 x hidden, as the authors' `get_generator_config`.
    """

    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_layers: int = 12
    num_heads: int = 4
    intermediate_size: int = 1024
    generator_fraction: float = 0.25
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    # How fine-tuning's classification and regression heads read one vector from the encoder:
    # "cls", the [CLS] position (the authors' heads), or "mean", the masked mean over the text
    # (what sentence-transformers checkpoints were trained with; their converter sets it).
    pooling: str = "cls"

    def __post_init__(self) -> None:
        _require(self.pooling in POOLINGS, "pooling", f"one of {POOLINGS}", self.pooling)
        _positive_ints(self, ("vocab_size", "embedding_size", "hidden_size", "num_layers",
                              "num_heads", "intermediate_size", "max_position_embeddings",
                              "type_vocab_size"))
        _require(self.hidden_size % self.num_heads == 0, "num_heads",
                 f"a divisor of hidden_size={self.hidden_size}", self.num_heads)
        _fractions(self, ("generator_fraction",))
        _fractions(self, ("hidden_dropout", "attention_dropout"), low_open=False)
        _require(isinstance(self.initializer_range, float) and self.initializer_range > 0,
                 "initializer_range", "a positive float", self.initializer_range)
        _require(isinstance(self.layer_norm_eps, float) and 0 < self.layer_norm_eps < 1,
                 "layer_norm_eps", "a float in (0, 1)", self.layer_norm_eps)

    @property
    def generator_hidden_size(self) -> int:
        return max(1, int(round(self.hidden_size * self.generator_fraction)))

    @property
    def generator_num_heads(self) -> int:
        return max(1, self.generator_hidden_size // 64)

    @property
    def generator_intermediate_size(self) -> int:
        return 4 * self.generator_hidden_size


OBJECTIVES = ("electra", "mlm")
# The masked-LM baseline's settings: BERT's 80% [MASK] / 10% random token / 10% unchanged.
BERT_MLM = {"objective": "mlm", "mask_token_rate": 0.8, "random_token_rate": 0.1}


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Pretraining objective and optimisation settings (published values per size in SIZES)."""

    max_seq_length: int = 128
    mask_prob: float = 0.15
    max_predictions_per_seq: int = 0  # 0 = derived: int((mask_prob + 0.005) * max_seq_length)
    # "electra": generator + discriminator (replaced token detection). "mlm": the BERT baseline,
    # a masked LM on the discriminator-sized encoder alone (for comparisons such as experiments/).
    objective: str = "electra"
    mask_token_rate: float = 0.85  # share of masked positions shown as [MASK]
    random_token_rate: float = 0.0  # share shown as a uniformly random token (BERT: 0.1)
    # Mask whole words ("##" pieces, and for Chinese the words the data builder's
    # --word_segmenter=jieba marked) instead of single tokens. Off: the authors' masking.
    whole_word_masking: bool = False
    temperature: float = 1.0
    disallow_correct: bool = False
    generator_weight: float = 1.0
    discriminator_weight: float = 50.0
    batch_size: int = 128
    train_steps: int = 1_000_000
    learning_rate: float = 5e-4
    warmup_steps: int = 10_000
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    # The authors' Adam has no bias correction. Without it the first ~1,000 updates move each
    # weight up to 3-6x the learning rate, harmless under their 10,000 warmup steps; a short
    # warmup lets that excess land at the peak rate.
    adam_bias_correction: bool = False
    clip_norm: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        _positive_ints(self, ("max_seq_length", "batch_size", "train_steps"))
        _fractions(self, ("mask_prob", "mask_token_rate"))
        _require(self.objective in OBJECTIVES, "objective", f"one of {OBJECTIVES}", self.objective)
        rate = self.random_token_rate
        _require(isinstance(rate, (int, float)) and not isinstance(rate, bool)
                 and 0.0 <= rate <= 1.0 - self.mask_token_rate, "random_token_rate",
                 f"a rate in [0, 1 - mask_token_rate = {1.0 - self.mask_token_rate:.3g}]", rate)
        _require(isinstance(self.max_predictions_per_seq, int)
                 and 0 <= self.max_predictions_per_seq <= self.max_seq_length,
                 "max_predictions_per_seq", f"an integer in [0, {self.max_seq_length}]"
                 " (0 = derived from mask_prob)", self.max_predictions_per_seq)
        for key in ("temperature", "learning_rate", "adam_epsilon", "clip_norm"):
            value = getattr(self, key)
            _require(isinstance(value, (int, float)) and value > 0, key, "a positive number",
                     value)
        for key in ("generator_weight", "discriminator_weight", "weight_decay"):
            value = getattr(self, key)
            _require(isinstance(value, (int, float)) and value >= 0, key,
                     "a non-negative number", value)
        _require(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0, "warmup_steps",
                 "a non-negative integer", self.warmup_steps)
        for key in ("disallow_correct", "adam_bias_correction", "whole_word_masking"):
            _require(isinstance(getattr(self, key), bool), key, "a boolean", getattr(self, key))

    @property
    def num_predictions(self) -> int:
        """N, the fixed number of masked slots per sequence (the official formula)."""
        if self.max_predictions_per_seq:
            return self.max_predictions_per_seq
        return max(1, int((self.mask_prob + 0.005) * self.max_seq_length))


@dataclasses.dataclass(frozen=True)
class ElectraConfig:
    """Everything a run needs: model shape and pretraining settings; saved with each run."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    pretrain: PretrainConfig = dataclasses.field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        _require(isinstance(self.model, ModelConfig), "model", "a ModelConfig", self.model)
        _require(isinstance(self.pretrain, PretrainConfig), "pretrain", "a PretrainConfig",
                 self.pretrain)
        _require(self.pretrain.max_seq_length <= self.model.max_position_embeddings,
                 "pretrain.max_seq_length",
                 f"at most model.max_position_embeddings={self.model.max_position_embeddings}",
                 self.pretrain.max_seq_length)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ElectraConfig:
        _require(isinstance(data, dict), "<root>", "a JSON object", type(data).__name__)
        _reject_unknown(cls, data, "")
        return cls(model=_build(ModelConfig, data.get("model", {}), "model."),
                   pretrain=_build(PretrainConfig, data.get("pretrain", {}), "pretrain."))

    @classmethod
    def from_json(cls, text: str) -> ElectraConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **sections: dict[str, Any]) -> ElectraConfig:
        """Returns a copy with some keys changed, e.g. `cfg.replace(model={"num_layers": 2})`."""
        merged = self.to_dict()
        for section, values in sections.items():
            _reject_unknown(ElectraConfig, {section: None}, "")
            merged[section].update(values)
        return ElectraConfig.from_dict(merged)


def _reject_unknown(cls: type, data: dict[str, Any], prefix: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"config key '{prefix}{key}': unknown; expected one of "
                              f"{sorted(known)}")


def _build(cls: type[T], data: dict[str, Any], prefix: str) -> T:
    _require(isinstance(data, dict), prefix.rstrip("."), "a JSON object", data)
    _reject_unknown(cls, data, prefix)
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        # JSON has one number type: accept 1 for 1.0 where a float is expected, nothing looser.
        if types[key] == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        values[key] = value
    try:
        return cls(**values)
    except ConfigError as e:
        raise ConfigError(str(e).replace("config key '", f"config key '{prefix}", 1)) from None


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")  # float16: dynamic loss scaling


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where and how to run (everything that is not the model or the recipe)."""

    model_dir: str
    train_files: str
    vocab_file: str
    eval_files: str = ""
    strategy: str = "auto"
    tpu: str = ""
    precision: str = "float32"
    jit_compile: bool = False
    steps_per_loop: int = 100
    save_every: int = 1000
    keep_checkpoints: int = 5
    log_every: int = 100
    eval_every: int = 1000
    eval_steps: int = 50
    accumulation_steps: int = 1
    init_checkpoint: str = ""
    deterministic: bool = False
    stop_after: int = 0  # stop (with a checkpoint) after this many steps in this process; 0=no

# The published sizes. Small/Base/Large: paper tables 6-7 and configure_pretraining.py;
# `tiny` is ours, for tests and the demo (not a published model). Its learning rate is Small's
# 5e-4: at 1e-3 a post-LayerNorm discriminator of this size collapses to predicting the base rate
# (measured: AUC 0.50 after 400 steps even on uniformly random replacements, with Keras' Adam too).
# Unlike the published sizes it uses Adam's bias correction: without it, the first updates after
# a warmup as short as tiny's move each weight 2-3x the peak learning rate (the excess fades over
# ~1,000 steps: under 10,000 warmup steps it is spent at a tenth of the peak rate), and the
# discriminator ends near the base rate (experiments/results/from_scratch.md).
SIZES: dict[str, ElectraConfig] = {
    "tiny": ElectraConfig(
        ModelConfig(vocab_size=8192, embedding_size=64, hidden_size=128, num_layers=4,
                    num_heads=2, intermediate_size=512, generator_fraction=0.25,
                    max_position_embeddings=128),
        PretrainConfig(max_seq_length=128, mask_prob=0.15, batch_size=32, train_steps=2000,
                       learning_rate=5e-4, warmup_steps=200, adam_bias_correction=True)),
    "small": ElectraConfig(
        ModelConfig(vocab_size=30522, embedding_size=128, hidden_size=256, num_layers=12,
                    num_heads=4, intermediate_size=1024, generator_fraction=0.25),
        PretrainConfig(max_seq_length=128, mask_prob=0.15, batch_size=128,
                       train_steps=1_000_000, learning_rate=5e-4, warmup_steps=10_000)),
    "base": ElectraConfig(
        ModelConfig(vocab_size=30522, embedding_size=768, hidden_size=768, num_layers=12,
                    num_heads=12, intermediate_size=3072, generator_fraction=1 / 3),
        PretrainConfig(max_seq_length=512, mask_prob=0.15, batch_size=256, train_steps=766_000,
                       learning_rate=2e-4, warmup_steps=10_000)),
    "large": ElectraConfig(
        ModelConfig(vocab_size=30522, embedding_size=1024, hidden_size=1024, num_layers=24,
                    num_heads=16, intermediate_size=4096, generator_fraction=0.25),
        PretrainConfig(max_seq_length=512, mask_prob=0.25, batch_size=2048,
                       train_steps=400_000, learning_rate=2e-4, warmup_steps=10_000)),
}


def get_config(size: str) -> ElectraConfig:
    """Returns the preset for a size name ('tiny', 'small', 'base', 'large')."""
    if size not in SIZES:
        raise ConfigError(f"unknown model size {size!r}; expected one of {sorted(SIZES)}")
    return SIZES[size]


def nearest_size(model: ModelConfig) -> str:
    """The preset closest to `model` in encoder size (log of layers x hidden^2), e.g. 'base' for
    BERT-Base, 'small' for a 6-layer, 384-wide MiniLM; ties go to the smaller preset."""
    def distance(name: str) -> float:
        ref = SIZES[name].model
        return abs(math.log(model.num_layers * model.hidden_size ** 2)
                   - math.log(ref.num_layers * ref.hidden_size ** 2))

    return min(SIZES, key=distance)


def approx_params(model: ModelConfig) -> int:
    """Discriminator parameter count (embeddings + encoder + RTD head), for sanity checks."""
    e, h, f, n = model.embedding_size, model.hidden_size, model.intermediate_size, model.num_layers
    emb = (model.vocab_size + model.max_position_embeddings + model.type_vocab_size) * e + 2 * e
    proj = (e * h + h) if e != h else 0
    layer = 4 * (h * h + h) + 2 * h * f + f + h + 4 * h
    head = h * h + h + h + 1
    return emb + proj + n * layer + head


__all__ = ["BERT_MLM", "ConfigError", "ModelConfig", "PretrainConfig", "ElectraConfig", "SIZES",
           "get_config", "nearest_size", "approx_params"]
