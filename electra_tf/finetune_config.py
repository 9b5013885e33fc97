"""FinetuneConfig: everything a fine-tuning run needs, checked when made.

Its own module so that the fine-tuning data code (electra_tf/data/finetune_data.py) and the
run (electra_tf/finetuning.py) both read it without importing each other.
"""

from __future__ import annotations

import dataclasses
import json

from electra_tf import optimization
from electra_tf.config import PRECISIONS, ModelConfig
from electra_tf.data import tasks
from electra_tf.errors import ConfigError

# the fine-tuning loop has no loss scaling: float16 is pretraining-only for now
FINETUNE_PRECISIONS = tuple(p for p in PRECISIONS if p != "mixed_float16")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Everything a fine-tuning run needs (saved as finetune_config.json in output_dir)."""

    task: tasks.TaskSpec
    data_dir: str
    vocab_file: str
    output_dir: str
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    init_checkpoint: str = ""
    lower_case: bool = True
    max_seq_length: int = 128
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 3e-4
    epochs: float = 0.0  # 0: the task's default (3; 10 RTE/STS-B; 2 SQuAD)
    warmup_proportion: float = 0.1
    layerwise_decay: float = 0.8
    llrd_mode: str = "official"
    # Fresh weights for the top k encoder blocks after loading (Zhang et al. 2021, "Revisiting
    # few-sample BERT fine-tuning"): a briefly pretrained discriminator's top block is
    # specialised to replaced-token detection; 0 = the official behaviour.
    reinit_layers: int = 0
    # All-but-the-top on the loaded word embeddings: the mean and the top k principal
    # directions removed (finetuning_io.remove_top_directions); 0 = the official behaviour.
    embedding_directions_removed: int = 0
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    # Adam's bias correction: off in the authors' optimizer (the published runs), where the
    # first few hundred steps move each weight up to 3-6x the learning rate.
    adam_bias_correction: bool = False
    clip_norm: float = 1.0
    num_seeds: int = 1
    seed: int = 0
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    beam_size: int = 20
    na_threshold: float = -2.75  # SQuAD 2.0: no answer when the no-answer logit exceeds this
    strategy: str = "auto"
    tpu: str = ""
    precision: str = "float32"
    jit_compile: bool = False
    steps_per_loop: int = 100
    log_every: int = 100
    save_every: int = 1000
    keep_checkpoints: int = 1

    def __post_init__(self) -> None:
        def need(ok, key, expected):
            if not ok:
                raise ConfigError(f"config key '{key}': expected {expected}, got "
                                  f"{getattr(self, key)!r}")

        for key in ("max_seq_length", "batch_size", "eval_batch_size", "num_seeds",
                    "doc_stride", "max_query_length", "n_best_size", "max_answer_length",
                    "beam_size", "steps_per_loop", "log_every", "save_every",
                    "keep_checkpoints"):
            value = getattr(self, key)
            need(isinstance(value, int) and value > 0, key, "a positive integer")
        need(self.max_seq_length <= self.model.max_position_embeddings, "max_seq_length",
             f"at most model.max_position_embeddings={self.model.max_position_embeddings}")
        need(self.learning_rate > 0, "learning_rate", "a positive number")
        need(self.epochs >= 0, "epochs", "a non-negative number (0 = the task's default)")
        need(0 <= self.warmup_proportion < 1, "warmup_proportion", "a fraction in [0, 1)")
        need(0 < self.layerwise_decay <= 1, "layerwise_decay", "a number in (0, 1]")
        need(isinstance(self.reinit_layers, int)
             and 0 <= self.reinit_layers <= self.model.num_layers, "reinit_layers",
             f"an integer in [0, model.num_layers={self.model.num_layers}]")
        need(isinstance(self.embedding_directions_removed, int)
             and 0 <= self.embedding_directions_removed < self.model.embedding_size,
             "embedding_directions_removed",
             f"an integer in [0, model.embedding_size={self.model.embedding_size})")
        need(self.llrd_mode in optimization.LLRD_MODES, "llrd_mode",
             f"one of {optimization.LLRD_MODES}")
        need(self.precision in FINETUNE_PRECISIONS, "precision", f"one of {FINETUNE_PRECISIONS}")
        need(self.weight_decay >= 0 and self.clip_norm > 0, "clip_norm",
             "weight_decay >= 0 and clip_norm > 0")

    @property
    def train_epochs(self) -> float:
        return self.epochs or float(self.task.epochs)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
