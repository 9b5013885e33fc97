"""WordPiece vocabulary: loading and checking `vocab.txt` (one token per line, id = line number).

Special-token ids are always looked up by token: the standard BERT vocabulary has [MASK] at 103,
a vocabulary learned from another corpus may have it at 4.
"""

from __future__ import annotations

import dataclasses
import hashlib

import tensorflow as tf

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class VocabError(ValueError):
    """A vocabulary file is missing, malformed or does not fit the model; names the file."""


@dataclasses.dataclass(frozen=True)
class Vocab:
    """A checked WordPiece vocabulary."""

    path: str
    tokens: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        try:
            return self._index[token]
        except KeyError:
            raise VocabError(f"{self.path} has no {token}") from None

    @property
    def _index(self) -> dict[str, int]:
        index = self.__dict__.get("_index_cache")
        if index is None:
            index = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_index_cache", index)
        return index

    @property
    def pad_id(self) -> int:
        return self.id("[PAD]")

    @property
    def mask_id(self) -> int:
        return self.id("[MASK]")

    @property
    def cls_id(self) -> int:
        return self.id("[CLS]")

    @property
    def sep_id(self) -> int:
        return self.id("[SEP]")

    @property
    def unk_id(self) -> int:
        return self.id("[UNK]")

    @property
    def never_masked_ids(self) -> tuple[int, ...]:
        """Ids masking never chooses: [CLS], [SEP], [MASK] (padding is excluded by input_mask)."""
        return (self.cls_id, self.sep_id, self.mask_id)

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()


def load_vocab(path: str, expected_size: int | None = None) -> Vocab:
    """Reads and checks a vocab.txt (local or gs://) before any work is done.

    Raises VocabError naming the file when it is missing, empty, has a duplicate token, lacks
    one of the five special tokens, or its size differs from `expected_size` (the model's
    vocab_size).
    """
    if not tf.io.gfile.exists(path):
        raise VocabError(f"{path}: vocabulary file not found")
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise VocabError(f"{path}: not UTF-8 ({e})") from None
    tokens = text.splitlines()
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokens = [t.rstrip("\r") for t in tokens]
    if not tokens:
        raise VocabError(f"{path}: vocabulary is empty")
    seen: dict[str, int] = {}
    for line, token in enumerate(tokens, start=1):
        if token in seen:
            raise VocabError(f"{path}: duplicate token {token!r} at lines {seen[token]} "
                             f"and {line}")
        seen[token] = line
    for special in SPECIAL_TOKENS:
        if special not in seen:
            raise VocabError(f"{path} has no {special}")
    if expected_size is not None and len(tokens) != expected_size:
        raise VocabError(f"{path} has {len(tokens)} tokens but the model config's vocab_size "
                         f"is {expected_size}")
    return Vocab(path=path, tokens=tuple(tokens))
