"""The task kinds, declared once: the task specs (data/tasks.py), the fine-tuning heads
(heads.py), the losses and evaluation (finetuning.py) and the serving outputs (export.py) all
name a task's kind with these."""

from __future__ import annotations

CLASSIFICATION, REGRESSION, TAGGING, SQUAD = "classification", "regression", "tagging", "squad"
KINDS = (CLASSIFICATION, REGRESSION, TAGGING, SQUAD)
GENERIC_KINDS = (CLASSIFICATION, REGRESSION, TAGGING)  # what a user's TSV/CSV/JSONL task can be
ENCODER = "encoder"  # an export without a task head: the discriminator's hidden states
