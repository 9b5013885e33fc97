"""WordPiece vocabulary: loading and checking `vocab.txt` (one token per line, id = line number).

Special-token ids are always looked up by token: the standard BERT vocabulary has [MASK] at 103,
a vocabulary learned from another corpus may have it at 4.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import tensorflow as tf

from electra_tf import normalization
from electra_tf.atomic import write_atomic
from electra_tf.errors import VocabError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


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


def casing_mismatch(vocab: Vocab, lower_case: bool) -> str | None:
    """A warning when the vocabulary's casing and the lower-casing setting disagree, else None.

    BERT-style uncased vocabularies have (almost) no upper-case letters (bert-base-uncased: 2
    of 30,522 tokens), cased ones many. Without lower-casing an uncased vocabulary turns every
    capitalised word into [UNK] or stray pieces; with it, a cased vocabulary's upper-case
    tokens are never used. A warning, not an error: text without letter case (e.g. Korean,
    kept whole by --nodo_lower_case, which also keeps accents) is a fair use of either.
    """
    words = [t for t in vocab.tokens if not (t.startswith("[") and t.endswith("]"))]
    share = sum(any(c.isupper() for c in t) for t in words) / max(1, len(words))
    if not lower_case and share < 0.005:
        return (f"{vocab.path} looks uncased ({100 * share:.2g}% of its tokens have upper-case "
                "letters) but lower-casing is off (--nodo_lower_case): capitalised words will "
                "become [UNK] or stray pieces; use --do_lower_case unless the text has no case")
    if lower_case and share > 0.02:
        return (f"{vocab.path} looks cased ({100 * share:.2g}% of its tokens have upper-case "
                "letters) but lower-casing is on (--do_lower_case, the default): those tokens "
                "will never be used; pass --nodo_lower_case for a cased model")
    return None


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


def learn_vocab(text_files: list[str], vocab_size: int, output_path: str,
                lower_case: bool = True, min_frequency: int = 2) -> Vocab:
    """Learns a BERT-compatible WordPiece vocab.txt from text files (local or gs://).

    Uses Hugging Face `tokenizers` (Rust; ~15 s for 6M words on one core, where
    tensorflow-text's learner took minutes for 100k lines) with BERT's normalization and
    pre-tokenization, the five special tokens first ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3,
    [MASK]=4) and `##` continuation pieces. A small corpus can yield fewer than `vocab_size`
    tokens; pretraining and fine-tuning take the model's vocab_size from the file written.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise VocabError(f"{output_path}: vocab size {vocab_size} is too small")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=lower_case,
        lowercase=lower_case)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    def lines():
        for path in text_files:
            yield from read_lines(path)

    # The trainer numbers the "##c" pieces in a hash map's order, which changes from process to
    # process, and breaks ties between equally frequent merges by those numbers: the same text
    # gave vocabularies of 5,799-5,805 tokens (huggingface/tokenizers#1794). Given up front,
    # with the special tokens, in sorted order, every piece has a fixed number. They are then
    # listed right after the special tokens; the set learned is what the trainer would learn.
    pieces = [f"##{c}" for c in sorted(_continuing_characters(lines(), tokenizer))]
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS) + pieces,
                                        continuing_subword_prefix="##", show_progress=False)
    tokenizer.train_from_iterator(lines(), trainer)
    by_id = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in by_id]
    if len(tokens) <= len(SPECIAL_TOKENS):
        raise VocabError(f"{output_path}: learned no tokens from {text_files} (empty corpus?)")
    write_atomic(output_path, "".join(t + "\n" for t in tokens).encode("utf-8"))
    return load_vocab(output_path)


def _continuing_characters(lines, tokenizer, chunk: int = 10_000) -> set[str]:
    """The characters that follow another inside a word (after the tokenizer's normalization
    and BERT's pre-tokenization): those the trainer makes "##" pieces of."""
    import itertools

    found: set[str] = set()
    lines = iter(lines)
    while block := list(itertools.islice(lines, chunk)):
        text = tokenizer.normalizer.normalize_str("\n".join(block))
        words = tokenizer.pre_tokenizer.pre_tokenize_str(text)
        found.update("".join(word[1:] for word, _ in words))
    return found


def read_lines(path: str, errors: str = "replace"):
    """Yields the lines of a UTF-8 text file, plain or .gz, local or gs:// (no newline)."""
    import gzip

    with tf.io.gfile.GFile(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
        for line in stream:
            yield line.decode("utf-8", errors=errors).rstrip("\r\n")


class WordPieceTokenizer:
    """The one tokenizer of training and serving: BERT's, on tensorflow-text's fast kernels.

    BERT's normalization (`electra_tf.normalization`: cleaning; for `lower_case`, accents
    dropped and lower-casing, compatibility characters such as the full-width "，" kept), then
    tensorflow-text's `FastBertTokenizer` without its own normalization: whitespace and
    punctuation splitting, one word per CJK character, WordPiece with `##` pieces, [UNK] for
    unknown words and words over 100 bytes. Gives the ids of transformers' `BertTokenizer`
    (checked in tests on English and Chinese text, both casings). The data builder,
    fine-tuning and the exported SavedModel all use this class, so their ids cannot disagree.
    """

    def __init__(self, vocab: Vocab, lower_case: bool = True):
        import tensorflow_text as tf_text

        self.vocab = vocab
        self.lower_case = lower_case
        normalizer, wordpiece = _model_buffers(vocab)
        self._tokenizer = tf_text.FastBertTokenizer(
            token_out_type=tf.int64, fast_wordpiece_model_buffer=wordpiece,
            fast_bert_normalizer_model_buffer=normalizer)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """[B] UTF-8 strings -> [B, (pieces)] int64 ragged ids."""
        return self._tokenizer.tokenize(normalization.normalize(texts, self.lower_case))

    def tokenize_with_offsets(self, texts: tf.Tensor
                              ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """[B] UTF-8 strings -> ids, start and end byte offsets of each piece in the raw text,
        [B, (pieces)] (a piece of a character that normalization expands, e.g. an accent
        dropped, spans the whole raw character)."""
        normalized, char_starts, char_ends, norm_ends = normalization.normalize_with_offsets(
            texts, self.lower_case)
        ids, starts, ends = self._tokenizer.tokenize_with_offsets(normalized)
        if ids.ragged_rank == 2:  # [B, (words), (pieces)] in some tensorflow-text versions
            ids, starts, ends = (t.merge_dims(-2, -1) for t in (ids, starts, ends))
        starts, ends = normalization.raw_offsets(starts, ends, char_starts, char_ends,
                                                 norm_ends)
        return ids, starts, ends

    def ids(self, text: str) -> list[int]:
        """One string -> its ids (convenience for tests and tools)."""
        return self.tokenize(tf.constant([text]))[0].numpy().tolist()


def _model_buffers(vocab: Vocab) -> tuple[tf.Tensor, tf.Tensor]:
    """The tokenizer's normalizer and WordPiece models (flatbuffers) as uint8 tensors.

    tensorflow-text builds them anew in every process (0.6-1 s here, a tenth of a corpus build)
    and turns them into tensors through a Python list of ints; we build them with the same
    builders (`[UNK]`, `##`, 100 bytes per word: BERT's settings; the normalizer without
    lower-casing, which `normalization` does), keep them in a cache directory keyed by the
    tensorflow-text version and the vocabulary's hash (`ELECTRA_TF_CACHE`, default
    ~/.cache/electra-tf; empty disables it) and convert through numpy. Identical ids either way
    (tested).
    """
    import numpy as np
    import tensorflow_text as tf_text
    from tensorflow_text.core.pybinds import (
        pywrap_fast_bert_normalizer_model_builder as normalizer_builder,
    )
    from tensorflow_text.core.pybinds import (
        pywrap_fast_wordpiece_tokenizer_model_builder as wordpiece_builder,
    )

    builders = {
        "normalizer": lambda: normalizer_builder.build_fast_bert_normalizer_model(False),
        "wordpiece": lambda: wordpiece_builder.build_fast_wordpiece_model(
            list(vocab.tokens), 100, "##", "[UNK]", False, False),
    }
    cache = os.environ.get("ELECTRA_TF_CACHE",
                           os.path.join(os.path.expanduser("~"), ".cache", "electra-tf"))
    buffers = []
    for name, build in builders.items():
        key = hashlib.sha256(f"{tf_text.__version__} {name} "
                             f"{vocab.sha256 if name == 'wordpiece' else ''}".encode())
        path = os.path.join(cache, f"tokenizer-{name}-{key.hexdigest()[:24]}.bin") if cache else ""
        data = None
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
        if not data:
            data = build()
            if path:
                try:
                    os.makedirs(cache, exist_ok=True)
                    tmp = f"{path}.tmp-{os.getpid()}"
                    with open(tmp, "wb") as f:
                        f.write(data)
                    os.replace(tmp, path)
                except OSError:  # a read-only home: build every time, as tensorflow-text does
                    pass
        buffers.append(tf.constant(np.frombuffer(data, np.uint8)))
    return buffers[0], buffers[1]
