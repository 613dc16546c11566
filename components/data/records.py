"""Reading and validating QQP question pairs from GLUE TSV files and HF datasets.

Every problem is reported as a `QqpDataError` naming the source, the row and
what is wrong; no row is ever dropped silently.
"""

from __future__ import annotations

import dataclasses
from typing import Any, BinaryIO, Iterable, Iterator, Mapping

TSV_SUFFIX = ".tsv"
HF_SUFFIXES = (".parquet", ".arrow")
TSV_COLUMNS = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
GLUE_TEST_COLUMNS = ("id", "question1", "question2")


class QqpDataError(ValueError):
    """Input data that cannot be ingested; the message names file, row and problem."""


@dataclasses.dataclass(frozen=True)
class QqpPair:
    """One labeled question pair."""

    id: int
    question1: str
    question2: str
    is_duplicate: int | None  # None only for unlabeled input to `predict`


def _where(source: str, row: int | None, line: int | None = None) -> str:
    if row is None:
        return source
    if line is None:
        return f"{source}: row {row}"
    return f"{source}: row {row} (line {line})"


def make_pair(source: str, row: int, line: int | None, pair_id: Any, question1: Any,
              question2: Any, label: Any, require_label: bool = True,
              allow_empty: bool = False) -> QqpPair:
    """Validates one row's values and returns it as a `QqpPair`.

    `row` counts data rows from 1; `line` is the physical line (header = 1).
    With `require_label=False` a missing label (None) is allowed; with
    `allow_empty` an empty question is too (a model scores it; training data
    must not have one).
    """
    where = _where(source, row, line)
    try:
        parsed_id = int(pair_id)
    except (TypeError, ValueError):
        raise QqpDataError(f"{where}: id {pair_id!r} is not an integer") from None
    for name, question in (("question1", question1), ("question2", question2)):
        if not isinstance(question, str):
            raise QqpDataError(f"{where}: {name} is missing (got {question!r})")
        if not question.strip() and not allow_empty:
            raise QqpDataError(f"{where}: {name} is empty")
    if label is None and not require_label:
        return QqpPair(parsed_id, question1, question2, None)
    label_text = str(label).strip()
    if label_text == "-1":
        raise QqpDataError(
            f"{where}: label is -1, which marks an unlabeled (GLUE test) row; "
            "only labeled train/validation data can be ingested")
    if label_text not in ("0", "1"):
        raise QqpDataError(f"{where}: is_duplicate must be 0 or 1, got {label!r}")
    return QqpPair(parsed_id, question1, question2, int(label_text))


def _decode(raw_line: bytes, where: str) -> str:
    try:
        return raw_line.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = raw_line[err.start:err.end].hex(" ")
        raise QqpDataError(
            f"{where}: not valid UTF-8 (bytes {bad} at byte offset {err.start})") from None


def _strip_line_end(raw_line: bytes) -> bytes:
    if raw_line.endswith(b"\n"):
        raw_line = raw_line[:-1]
    if raw_line.endswith(b"\r"):
        raw_line = raw_line[:-1]
    return raw_line


def _read_header(source: str, header: bytes, require_label: bool) -> list[str]:
    columns = _decode(_strip_line_end(header), f"{source}: line 1").split("\t")
    if tuple(columns) == TSV_COLUMNS:
        return columns
    if tuple(columns) in (GLUE_TEST_COLUMNS, TSV_COLUMNS[:-1]):
        if not require_label:
            return columns
        raise QqpDataError(
            f"{source}: line 1: this is an unlabeled GLUE test file (columns "
            f"{' '.join(columns)}); only labeled train/dev files can be ingested")
    raise QqpDataError(
        f"{source}: line 1: expected the header {' '.join(TSV_COLUMNS)!r} "
        f"(tab-separated), found {' '.join(columns)!r}")


def read_tsv_pairs(stream: BinaryIO, source: str, require_label: bool = True,
                   allow_empty: bool = False) -> Iterator[QqpPair]:
    """Yields the pairs of a GLUE-format QQP TSV file (tab-separated, no quoting).

    Raises `QqpDataError` for an empty file, a wrong header, a row with the wrong
    number of columns, bytes that are not UTF-8, a bad id or label, or an empty
    question. With `require_label=False`, files without the `is_duplicate`
    column (GLUE's test layout) are accepted too, and with `allow_empty` empty
    questions.
    """
    header = stream.readline()
    if not header:
        raise QqpDataError(f"{source}: the file is empty (expected a header line "
                           f"{' '.join(TSV_COLUMNS)!r})")
    columns = _read_header(source, header, require_label)
    row = 0
    for row, raw_line in enumerate(stream, start=1):
        line = row + 1
        where = _where(source, row, line)
        fields = _decode(_strip_line_end(raw_line), where).split("\t")
        if len(fields) != len(columns):
            raise QqpDataError(
                f"{where}: expected {len(columns)} tab-separated columns, found "
                f"{len(fields)} (a tab or line break inside a question, or a missing field?)")
        values = dict(zip(columns, fields))
        yield make_pair(source, row, line, values["id"], values["question1"],
                        values["question2"], values.get("is_duplicate"), require_label,
                        allow_empty)
    if row == 0:
        raise QqpDataError(f"{source}: the file has a header but no data rows")


def pairs_from_records(records: Iterable[Mapping[str, Any]], source: str) -> Iterator[QqpPair]:
    """Yields the pairs of Hugging Face QQP records.

    Accepts GLUE's column names (`idx`, `label`) and this project's (`id`,
    `is_duplicate`).
    """
    row = 0
    for row, record in enumerate(records, start=1):
        pair_id = record.get("idx", record.get("id"))
        label = record.get("label", record.get("is_duplicate"))
        yield make_pair(source, row, None, pair_id, record.get("question1"),
                        record.get("question2"), label)
    if row == 0:
        raise QqpDataError(f"{source}: contains no rows")


def check_columns(column_names: Iterable[str], source: str) -> None:
    """Raises `QqpDataError` unless a HF dataset has the QQP columns."""
    names = set(column_names)
    missing = [name for name in ("question1", "question2") if name not in names]
    if not names & {"idx", "id"}:
        missing.append("idx (or id)")
    if not names & {"label", "is_duplicate"}:
        missing.append("label (or is_duplicate)")
    if missing:
        raise QqpDataError(f"{source}: missing column(s) {', '.join(missing)}; "
                           f"found {', '.join(sorted(names))}")


def read_pairs(path: str) -> Iterator[QqpPair]:
    """Yields the validated pairs of one QQP file (any filesystem), read as its extension says."""
    if path.endswith(TSV_SUFFIX):
        from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

        with fileio.open(path, "rb") as stream:
            yield from read_tsv_pairs(stream, path)
    elif path.endswith(HF_SUFFIXES):
        yield from _read_hf_file(path)
    else:
        raise QqpDataError(
            f"{path}: unsupported file type; expected {TSV_SUFFIX} or one of {HF_SUFFIXES}")


def _read_hf_file(path: str) -> Iterator[QqpPair]:
    import datasets  # pylint: disable=import-outside-toplevel

    dataset = (datasets.Dataset.from_parquet(path) if path.endswith(".parquet")
               else datasets.Dataset.from_file(path))
    check_columns(dataset.column_names, path)
    yield from pairs_from_records(dataset, path)
