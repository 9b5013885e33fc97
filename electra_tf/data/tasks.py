"""Fine-tuning tasks: what to read, from which files, and how to score it.

A task is a `TaskSpec`: its kind (classification, regression, tagging, squad), the file of each
split, the file format and columns, the label set and the metrics. GLUE, SQuAD and CoNLL tasks
are presets in TASKS; any other task is a spec built from flags or a JSON file
(`generic_spec`), so adding one needs no code.

Readers return `Example`s (texts + label) and fail with a `DataError` naming the file, line
and column on: a missing column, a short row, an empty split, a label outside the label set.
File layouts:
  GLUE: the GLUE distribution's TSVs (header row except CoLA's train/dev; no quoting).
  tsv/csv: one example per row; columns by header name, or by 0-based index without header.
  jsonl: one JSON object per line; columns are keys.
  conll: one token per line, whitespace-separated columns, word first; blank line between
    sentences; -DOCSTART- lines skipped.
  squad: the SQuAD 1.1/2.0 JSON (read in squad.py).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math

import tensorflow as tf

from electra_tf.errors import DataError
from electra_tf.kinds import GENERIC_KINDS, KINDS

FORMATS = ("tsv", "csv", "jsonl", "conll", "squad")
SPLITS = ("train", "dev", "test")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One fine-tuning task. Columns are header names, or 0-based indices when has_header=False.

    files: split -> ((eval name, file name), ...); MNLI's dev has two (matched, mismatched).
    test_columns: text columns of the test files when they differ (CoLA's test has a header).
    labels: the label set in output order; empty = learned from the training file (sorted).
    label_range: regression targets are scaled to [0, 1] by (y - low) / (high - low), as the
      official STS-B (0, 5); empty = the training file's range.
    test_labels: the test files carry the label column too: test metrics are computed as for
      dev and reported as test_<metric> (GLUE's test files have no labels: off for presets).
    """

    name: str
    kind: str
    format: str
    text_columns: tuple[str, ...] = ()
    label_column: str = ""
    has_header: bool = True
    files: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    test_columns: tuple[str, ...] = ()
    id_column: str = ""
    labels: tuple[str, ...] = ()
    label_range: tuple[float, ...] = ()
    metrics: tuple[str, ...] = ("accuracy",)
    submission_name: tuple[str, ...] = ()  # GLUE: file names of the test predictions
    squad_v2: bool = False
    test_labels: bool = False
    epochs: int = 3

    def __post_init__(self) -> None:
        def need(ok, key, expected, value):
            if not ok:
                raise DataError(f"task {self.name!r}: '{key}' must be {expected}, got {value!r}")

        need(self.kind in KINDS, "kind", f"one of {KINDS}", self.kind)
        need(self.format in FORMATS, "format", f"one of {FORMATS}", self.format)
        if self.format in ("tsv", "csv", "jsonl"):
            need(1 <= len(self.text_columns) <= 2, "text_columns", "one or two columns",
                 self.text_columns)
            need(bool(self.label_column), "label_column", "set", self.label_column)
        need(self.kind != "regression" or len(self.label_range) in (0, 2), "label_range",
             "empty or (low, high)", self.label_range)
        need(dict(self.files).get("train") is not None, "files", "a 'train' entry", self.files)

    def split_files(self, split: str) -> tuple[tuple[str, str], ...]:
        return dict(self.files).get(split, ())

    def labelled(self, split: str) -> bool:
        """Whether the split's files carry labels (read, checked and scored)."""
        return split != "test" or self.test_labels


@dataclasses.dataclass
class Example:
    """texts: one or two strings (tagging: the words); label: a string, a float, or the tags."""

    texts: tuple
    label: object = None
    id: str = ""


def _files(ext: str, dev: tuple[tuple[str, str], ...] | None = None,
           test: tuple[tuple[str, str], ...] | None = None):
    return (("train", (("train", f"train.{ext}"),)),
            ("dev", dev or (("dev", f"dev.{ext}"),)),
            ("test", test or (("test", f"test.{ext}"),)))


def _glue(name, columns, label, labels, metrics, submission, **kw) -> TaskSpec:
    return TaskSpec(name=name, kind=kw.pop("kind", "classification"), format="tsv",
                    text_columns=columns, label_column=label, labels=labels, metrics=metrics,
                    files=kw.pop("files", _files("tsv")), submission_name=submission,
                    id_column=kw.pop("id_column", "index"), **kw)


_NLI = ("entailment", "not_entailment")
TASKS: dict[str, TaskSpec] = {
    "cola": _glue("cola", ("3",), "1", ("0", "1"), ("mcc", "accuracy"), ("CoLA",),
                  has_header=False, test_columns=("sentence",)),
    "sst": _glue("sst", ("sentence",), "label", ("0", "1"), ("accuracy",), ("SST-2",)),
    "mrpc": _glue("mrpc", ("#1 String", "#2 String"), "Quality", ("0", "1"),
                  ("accuracy", "f1"), ("MRPC",)),
    "sts": _glue("sts", ("sentence1", "sentence2"), "score", (), ("pearson", "spearman"),
                 ("STS-B",), kind="regression", label_range=(0.0, 5.0), epochs=10),
    "qqp": _glue("qqp", ("question1", "question2"), "is_duplicate", ("0", "1"),
                 ("accuracy", "f1"), ("QQP",), id_column="id"),
    "mnli": _glue("mnli", ("sentence1", "sentence2"), "gold_label",
                  ("contradiction", "entailment", "neutral"), ("accuracy",),
                  ("MNLI-m", "MNLI-mm"),
                  files=_files("tsv", (("matched", "dev_matched.tsv"),
                                       ("mismatched", "dev_mismatched.tsv")),
                               (("matched", "test_matched.tsv"),
                                ("mismatched", "test_mismatched.tsv")))),
    "qnli": _glue("qnli", ("question", "sentence"), "label", _NLI, ("accuracy",), ("QNLI",)),
    "rte": _glue("rte", ("sentence1", "sentence2"), "label", _NLI, ("accuracy",), ("RTE",),
                 epochs=10),
    "squad": TaskSpec("squad", "squad", "squad", files=_files("json", test=()), squad_v2=True,
                      metrics=("exact", "f1"), epochs=2),
    "squadv1": TaskSpec("squadv1", "squad", "squad", files=_files("json", test=()),
                        metrics=("exact_match", "f1"), epochs=2),
    "ner": TaskSpec("ner", "tagging", "conll", label_column="-1", files=_files("txt"),
                    metrics=("f1",)),
    "chunk": TaskSpec("chunk", "tagging", "conll", label_column="-1", files=_files("txt"),
                      metrics=("f1",)),
}
# The GLUE distribution's folder names, as users type them.
ALIASES = {"sst-2": "sst", "sst2": "sst", "sts-b": "sts", "stsb": "sts", "squad2": "squad",
           "squadv2": "squad", "squad1": "squadv1", "conll2003": "ner", "conll2000": "chunk"}


def get_task(name: str) -> TaskSpec:
    """A preset by name (GLUE, SQuAD, ner, chunk); `generic_spec` builds the others."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in TASKS:
        raise DataError(f"unknown task {name!r}; expected one of {sorted(TASKS)} or "
                        "'generic' with --task_spec / the column flags")
    return TASKS[key]


def generic_spec(name: str, kind: str, fmt: str, text_columns: tuple[str, ...],
                 label_column: str, has_header: bool = True, labels: tuple[str, ...] = (),
                 metrics: tuple[str, ...] = (), epochs: int = 3,
                 test_labels: bool = False) -> TaskSpec:
    """A user task from TSV, CSV or JSON Lines files train/dev/test.<format>."""
    if kind not in GENERIC_KINDS:
        raise DataError(f"generic task kind must be one of {GENERIC_KINDS}, got {kind!r}")
    default = {"classification": ("accuracy", "macro_f1"), "regression": ("pearson", "spearman"),
               "tagging": ("f1",)}[kind]
    ext = {"tsv": "tsv", "csv": "csv", "jsonl": "jsonl", "conll": "txt"}.get(fmt, fmt)
    return TaskSpec(name=name, kind=kind, format=fmt, text_columns=tuple(text_columns),
                    label_column=label_column, has_header=has_header, labels=tuple(labels),
                    metrics=tuple(metrics) or default, files=_files(ext), epochs=epochs,
                    test_labels=test_labels)


def spec_from_json(path: str) -> TaskSpec:
    """A TaskSpec from a JSON file with generic_spec's arguments (unknown keys are errors)."""
    with tf.io.gfile.GFile(path) as f:
        data = json.load(f)
    known = {"name", "kind", "format", "text_columns", "label_column", "has_header", "labels",
             "metrics", "epochs", "test_labels"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DataError(f"{path}: unknown task key(s) {unknown}; expected some of "
                        f"{sorted(known)}")
    data = dict(data)
    return generic_spec(data.pop("name", "generic"), data.pop("kind", "classification"),
                        data.pop("format", "tsv"), tuple(data.pop("text_columns", ())),
                        str(data.pop("label_column", "")), **{
                            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# --- readers -------------------------------------------------------------------------------------

def _rows(path: str, fmt: str):
    """Yields (line number, row) with row a list (tsv/csv) or a dict (jsonl)."""
    with tf.io.gfile.GFile(path, "rb") as f:
        text = f.read().decode("utf-8-sig")
    if fmt == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{number}: not JSON ({e.msg})") from None
        return
    # GLUE's TSVs contain unbalanced quotes: read them without quoting, as the reference code.
    reader = (csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
              if fmt == "tsv" else csv.reader(io.StringIO(text)))
    for row in reader:
        if row and any(cell.strip() for cell in row):
            yield reader.line_num, row


def _column_getter(path: str, header: list[str] | None, column: str):
    """A function row -> cell for a column name (with a header) or index (without)."""
    if header is not None:
        if column not in header:
            raise DataError(f"{path}: no column {column!r}; the header has {header}")
        index = header.index(column)
    else:
        try:
            index = int(column)
        except ValueError:
            raise DataError(f"{path}: column {column!r} must be an index: the file has no "
                            "header row") from None

    def get(number, row):
        try:
            return row[index]
        except IndexError:
            raise DataError(f"{path}:{number}: row has {len(row)} columns, column {column!r} "
                            "is missing") from None
    return get


def read_table(spec: TaskSpec, path: str, with_labels: bool) -> list[Example]:
    """Reads a tsv/csv/jsonl file of `spec` into Examples (labels as strings)."""
    test = not with_labels
    columns = spec.test_columns if (test and spec.test_columns) else spec.text_columns
    rows = _rows(path, spec.format)
    examples = []
    if spec.format == "jsonl":
        for number, obj in rows:
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object per line")
            missing = [c for c in columns + ((spec.label_column,) if with_labels else ())
                       if c not in obj]
            if missing:
                raise DataError(f"{path}:{number}: no key(s) {missing}; the object has "
                                f"{sorted(obj)}")
            label = str(obj[spec.label_column]) if with_labels else None
            examples.append(Example(tuple(str(obj[c]) for c in columns), label,
                                    str(obj.get(spec.id_column, len(examples)))))
        return examples
    header = None
    if spec.has_header or (test and spec.test_columns):
        first = next(rows, None)
        header = first[1] if first else []
    getters = [_column_getter(path, header, c) for c in columns]
    label_get = _column_getter(path, header, spec.label_column) if with_labels else None
    id_get = (_column_getter(path, header, spec.id_column)
              if header is not None and spec.id_column in header else None)
    for number, row in rows:
        texts = tuple(get(number, row) for get in getters)
        label = label_get(number, row).strip() if label_get else None
        example_id = id_get(number, row) if id_get else str(len(examples))
        examples.append(Example(texts, label, example_id))
    return examples


def read_conll(path: str, label_column: str = "-1", with_labels: bool = True) -> list[Example]:
    """CoNLL-style file -> one Example per sentence (texts = words, label = tags)."""
    examples, words, tags = [], [], []
    index = int(label_column)

    def flush():
        if words:
            examples.append(Example(tuple(words), tuple(tags) if with_labels else None,
                                    str(len(examples))))
        words.clear()
        tags.clear()

    with tf.io.gfile.GFile(path, "rb") as f:
        lines = f.read().decode("utf-8-sig").splitlines()
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            flush()
            continue
        if parts[0] == "-DOCSTART-":
            continue
        if with_labels:
            if len(parts) < 2:
                raise DataError(f"{path}:{number}: expected 'word ... tag', got {line!r}")
            tags.append(parts[index])
        words.append(parts[0])
    flush()
    return examples


def load_squad(path: str) -> list[dict]:
    """The `data` list of a SQuAD JSON file."""
    with tf.io.gfile.GFile(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not SQuAD JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(f"{path}: expected a JSON object with a 'data' list (SQuAD format)")
    return data["data"]


def read_squad(path: str) -> list[Example]:
    """One Example per question: texts (question, context), label dict, id = question id."""
    examples = []
    for article in load_squad(path):
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                label = {"answers": qa.get("answers", []),
                         "is_impossible": bool(qa.get("is_impossible", False))}
                examples.append(Example((qa["question"], context), label, qa["id"]))
    return examples


def read_split(spec: TaskSpec, data_dir: str, split: str) -> dict[str, list[Example]]:
    """{eval name: examples} of one split; {} when an optional split (test) has no file.

    Raises DataError on a missing train/dev file or an empty split.
    """
    out = {}
    for eval_name, filename in spec.split_files(split):
        path = f"{data_dir.rstrip('/')}/{filename}"
        if not tf.io.gfile.exists(path):
            if split == "test":
                continue
            raise DataError(f"{path}: {split} file of task {spec.name!r} not found")
        with_labels = spec.labelled(split)
        if spec.format == "conll":
            examples = read_conll(path, spec.label_column, with_labels)
        elif spec.format == "squad":
            examples = read_squad(path)
        else:
            examples = read_table(spec, path, with_labels)
        if not examples:
            raise DataError(f"{path}: the {split} split is empty")
        out[eval_name] = examples
    return out


def label_list(spec: TaskSpec, train: list[Example]) -> tuple[str, ...]:
    """The label set: the spec's, or the training file's labels (tagging: tags) sorted."""
    if spec.labels:
        return spec.labels
    if spec.kind == "tagging":
        return tuple(sorted({t for e in train for t in e.label}))
    return tuple(sorted({e.label for e in train}))


def check_labels(spec: TaskSpec, labels: tuple[str, ...], examples: list[Example],
                 where: str) -> None:
    """Every label of `examples` must be in `labels` (a dev label unseen in train is an error)."""
    known = set(labels)
    for i, example in enumerate(examples):
        if spec.kind == "regression":
            try:
                value = float(example.label)
            except ValueError:
                raise DataError(f"{where}: example {i} has label {example.label!r}, not a "
                                "number (a regression task)") from None
            if not math.isfinite(value):
                raise DataError(f"{where}: example {i} has label {example.label!r}")
            continue
        found = example.label if spec.kind == "tagging" else (example.label,)
        for label in found:
            if label not in known:
                raise DataError(f"{where}: example {i} has label {label!r}, which is not in "
                                f"the training labels {sorted(known)}")


def regression_range(spec: TaskSpec, train: list[Example]) -> tuple[float, float]:
    if spec.label_range:
        return spec.label_range[0], spec.label_range[1]
    values = [float(e.label) for e in train]
    low, high = min(values), max(values)
    return (low, high) if high > low else (low, low + 1.0)
