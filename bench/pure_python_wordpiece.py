"""A pure-Python BERT WordPiece tokenizer, written the way the official ELECTRA/BERT data builder
tokenizes (per line: clean control characters, lower-case, strip accents, split on whitespace,
punctuation and CJK characters, then greedy longest-match-first WordPiece, [UNK] for words of
more than 100 characters or with no match). It is the baseline of bench/builder.py: the builder
benchmark checks that it gives the same ids as our tensorflow-text tokenizer before timing it.
"""

from __future__ import annotations

import unicodedata


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C")
                                       and ch not in "\t\n\r"):
            continue
        out.append(" " if ch.isspace() else ch)
    return "".join(out)


def _split_words(text: str, lower_case: bool) -> list[str]:
    spaced = []
    for ch in _clean(text):
        spaced.append(f" {ch} " if _is_cjk(ord(ch)) else ch)
    words = []
    for word in "".join(spaced).split():
        if lower_case:
            word = unicodedata.normalize("NFD", word.lower())
            word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


class PurePythonWordPiece:
    """vocab: token -> id. `ids(line)` -> list of ids."""

    def __init__(self, vocab: dict[str, int], lower_case: bool = True,
                 unk: str = "[UNK]", max_chars: int = 100):
        self.vocab, self.lower_case, self.unk_id, self.max_chars = (
            vocab, lower_case, vocab[unk], max_chars)

    def _pieces(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk_id]
        out, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            out.append(found)
            start = end
        return out

    def ids(self, line: str) -> list[int]:
        return [i for word in _split_words(line, self.lower_case) for i in self._pieces(word)]
