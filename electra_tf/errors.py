"""The project's error types, in one place: each names the file, flag or key at fault and what
was expected. The command-line scripts print them as one line (`cli.run`): the input errors
exit 2, a run that had to stop (NonFiniteLossError) exits 1."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key."""


class DataError(ValueError):
    """Bad input or output data (corpus, shards, task files); the message names the file."""


class VocabError(ValueError):
    """A vocabulary file is missing, malformed or does not fit the model; names the file."""


class StrategyError(ValueError):
    """A strategy cannot be created as asked; the message says what to pass instead."""


class ConversionError(ValueError):
    """A checkpoint does not match the model: names the variable and what was expected."""


class ExportError(ValueError):
    """The export cannot be written or does not reproduce the model; says why."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


# What every script reports as bad input (one line, exit 2).
INPUT_ERRORS = (ConfigError, DataError, VocabError, StrategyError, ConversionError, ExportError)
