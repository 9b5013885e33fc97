"""The CLIs' flags come from the config dataclasses (electra_tf.flagdefs): every field has a
flag, a field without one stops the CLI at import, and a flag's value reaches the config."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
from absl import flags

from electra_tf import flagdefs
from electra_tf.config import ModelConfig, PretrainConfig, RunOptions
from electra_tf.finetune_config import FinetuneConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Example:
    path: str
    steps: int = 3
    rate: float = 0.5
    on: bool = False
    mode: str = "a"


def test_define_makes_one_typed_flag_per_field_and_values_reads_them():
    fv = flags.FlagValues()
    helps = {"path": "p", "steps": "s", "rate": "r", "on": "o", "mode": "m"}
    names = flagdefs.define(Example, helps, enums={"mode": ["a", "b"]}, renames={"on": "switch"},
                            unset=("rate",), flag_values=fv)
    assert names == ("path", "steps", "rate", "on", "mode")
    fv(["prog", "--path=x", "--steps=7", "--switch", "--mode=b"])
    assert flagdefs.values(Example, renames={"on": "switch"}, flag_values=fv) == {
        "path": "x", "steps": 7, "rate": None, "on": True, "mode": "b"}
    assert flagdefs.values(Example, renames={"on": "switch"}, only_set=True,
                           flag_values=fv) == {"path": "x", "steps": 7, "on": True, "mode": "b"}
    with pytest.raises(flags.IllegalFlagValueError):
        fv["mode"].parse("c")


def test_a_field_without_a_flag_is_refused_by_name():
    with pytest.raises(TypeError, match=r"no help text for \['mode'\]"):
        flagdefs.define(Example, {"path": "p", "steps": "s", "rate": "r", "on": "o"},
                        flag_values=flags.FlagValues())
    flagdefs.define(Example, {"path": "p", "steps": "s", "rate": "r", "on": "o"},
                    skip=("mode",), flag_values=flags.FlagValues())  # resolved elsewhere


def listed_flags(script: str) -> set[str]:
    out = subprocess.run([sys.executable, os.path.join(ROOT, script), "--help"],
                         capture_output=True, text=True, timeout=300).stdout
    return set(re.findall(r"^  --(?:\[no\])?(\w+)", out, flags=re.M))


def test_every_field_of_the_configs_is_a_flag_of_its_cli():
    names = listed_flags("run_pretraining.py")
    for cls in (RunOptions, PretrainConfig, ModelConfig):
        assert {f.name for f in dataclasses.fields(cls)} <= names, cls.__name__
    names = listed_flags("run_finetuning.py")
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)} - {"task", "model"}
    assert fields - {"lower_case"} <= names and "do_lower_case" in names


def test_pretraining_flags_override_the_preset_and_unset_ones_keep_it(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"{t}\n" for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                                  *(f"w{i}" for i in range(95))]))
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); import run_pretraining as r; "
            "r.FLAGS(sys.argv); print(r.resolve_config().to_json())")
    out = subprocess.run([sys.executable, "-c", code, "--model_size=tiny",
                          f"--vocab_file={vocab}", f"--model_dir={tmp_path / 'run'}",
                          "--temperature=0.5", "--num_heads=4", "--objective=mlm",
                          "--random_token_rate=0.05", "--pooling=mean"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    cfg = json.loads(out.stdout[out.stdout.index("{"):])
    assert cfg["pretrain"]["temperature"] == 0.5 and cfg["model"]["num_heads"] == 4
    assert cfg["model"]["pooling"] == "mean"  # recorded for fine-tuning to read
    # --objective=mlm brings BERT's rates; a rate given as a flag wins over them
    assert (cfg["pretrain"]["objective"], cfg["pretrain"]["mask_token_rate"],
            cfg["pretrain"]["random_token_rate"]) == ("mlm", 0.8, 0.05)
    assert cfg["model"]["vocab_size"] == 100 and cfg["pretrain"]["train_steps"] == 2000
