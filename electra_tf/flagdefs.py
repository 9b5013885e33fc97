"""Command-line flags made from the config dataclasses.

Each CLI defines one flag per field of its config dataclass (`define`) and builds the config
from them (`values`): a field added to a config gets its flag or the CLI stops at import,
naming the field, and a default lives in one place: the dataclass, or the preset a flag
without a value leaves alone (`unset`: default None).

    define(FinetuneConfig, HELP, skip=("task", "model"), unset=("learning_rate",))
    cfg = FinetuneConfig(task=..., model=..., **values(FinetuneConfig, skip=("task", "model")))
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Collection, Mapping, Sequence

from absl import flags

_DEFINE = {"int": flags.DEFINE_integer, "float": flags.DEFINE_float, "bool": flags.DEFINE_bool,
           "str": flags.DEFINE_string}


def define(cls, helps: Mapping[str, str], *, skip: Collection[str] = (),
           unset: Collection[str] | bool = (), renames: Mapping[str, str] | None = None,
           enums: Mapping[str, Sequence[str]] | None = None,
           flag_values: flags.FlagValues = flags.FLAGS) -> tuple[str, ...]:
    """Defines a flag for every field of dataclass `cls` except `skip` (resolved by the CLI from
    other flags): named as the field (or `renames[field]`), typed as its annotation (int,
    float, bool, str; `enums[field]` lists a str field's choices), defaulting to the field's
    default, or to None for the fields in `unset` (True: all). Returns the field names."""
    renames, enums = renames or {}, enums or {}
    caller = inspect.stack()[1].frame.f_globals.get("__name__", "")
    module = sys.argv[0] if caller == "__main__" else caller  # absl's name for the script
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip]
    missing = [f.name for f in fields if f.name not in helps]
    unknown = [f.name for f in fields if str(f.type) not in _DEFINE]
    if missing or unknown:
        raise TypeError(f"{cls.__name__}: no help text for {missing}; no flag type for "
                        f"{unknown} (add them, or resolve them from other flags via skip=)")
    for f in fields:
        none = unset is True or f.name in unset or f.default is dataclasses.MISSING
        default = None if none else f.default
        name = renames.get(f.name, f.name)
        if f.name in enums:
            flags.DEFINE_enum(name, default, list(enums[f.name]), helps[f.name],
                              flag_values=flag_values)
        else:
            _DEFINE[str(f.type)](name, default, helps[f.name], flag_values=flag_values)
        # listed by the CLI's --help, as flags it defined itself
        flag_values.register_key_flag_for_module(module, flag_values[name])
    return tuple(f.name for f in fields)


def values(cls, *, skip: Collection[str] = (), renames: Mapping[str, str] | None = None,
           only_set: bool = False, flag_values: flags.FlagValues = flags.FLAGS) -> dict:
    """{field: flag value} for the fields `define` made flags of; `only_set`: only those whose
    value is not None (the rest keep the preset's)."""
    renames = renames or {}
    out = {f.name: getattr(flag_values, renames.get(f.name, f.name))
           for f in dataclasses.fields(cls) if f.name not in skip}
    return {k: v for k, v in out.items() if v is not None} if only_set else out
