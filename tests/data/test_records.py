"""The QQP reader: tricky but valid rows, and a clear error for every kind of bad input."""

import io
from pathlib import Path

import pytest

from components.data.records import (QqpDataError, QqpPair, pairs_from_records, read_pairs,
                                     read_tsv_pairs)
from tests.conftest import HEADER


def _read(data: bytes) -> list[QqpPair]:
    return list(read_tsv_pairs(io.BytesIO(data), "mem.tsv"))


def test_tricky_valid_rows_are_read_verbatim():
    data = (HEADER.encode()
            + 'What does "quoted" mean?\t'.join(["1\t1\t2\t", '"Half open\t1\n']).encode()
            + "2\t3\t4\tCafé — ½ ünïcødé 中文 🙂?\tWhy…？\t0\r\n".encode()
            + b"3\t5\t6\t  padded  \tx\t1\n")
    pairs = _read(data)
    assert pairs[0] == QqpPair(1, 'What does "quoted" mean?', '"Half open', 1)
    assert pairs[1] == QqpPair(2, "Café — ½ ünïcødé 中文 🙂?", "Why…？", 0)  # CRLF stripped
    assert pairs[2].question1 == "  padded  "
    assert len(pairs) == 3


def test_crlf_header_is_accepted():
    assert _read(HEADER.replace("\n", "\r\n").encode() + b"7\t1\t2\ta\tb\t0\r\n") == [
        QqpPair(7, "a", "b", 0)]


@pytest.mark.parametrize("line, message", [
    (b"1\t1\t2\tq\twith\ttab\t0", "row 1 (line 2): expected 6 tab-separated columns, found 7"),
    (b"1\t1\t2\tq\t0", "row 1 (line 2): expected 6 tab-separated columns, found 5"),
    (b"1\t1\t2\tq\tp\t2", "row 1 (line 2): is_duplicate must be 0 or 1, got '2'"),
    (b"1\t1\t2\tq\tp\tyes", "row 1 (line 2): is_duplicate must be 0 or 1, got 'yes'"),
    (b"1\t1\t2\tq\tp\t-1", "row 1 (line 2): label is -1, which marks an unlabeled"),
    (b"1\t1\t2\t\tp\t0", "row 1 (line 2): question1 is empty"),
    (b"1\t1\t2\tq\t   \t0", "row 1 (line 2): question2 is empty"),
    (b"1\t1\t2\tq\xff\xfe\tp\t0", "row 1 (line 2): not valid UTF-8 (bytes ff at byte offset 7)"),
    (b"x1\t1\t2\tq\tp\t0", "row 1 (line 2): id 'x1' is not an integer"),
    (b"", "row 1 (line 2): expected 6 tab-separated columns, found 1"),
])
def test_bad_rows_name_file_row_and_problem(line, message):
    good = b"5\t1\t2\ta\tb\t1\n"
    with pytest.raises(QqpDataError) as error:
        _read(HEADER.encode() + line + b"\n" + good)
    assert str(error.value).startswith("mem.tsv: ")
    assert message in str(error.value)


def test_error_names_the_right_row_after_good_rows():
    data = HEADER.encode() + b"1\t1\t2\ta\tb\t1\n" * 4 + b"9\t1\t2\ta\tb\t3\n"
    with pytest.raises(QqpDataError, match=r"mem.tsv: row 5 \(line 6\): is_duplicate"):
        _read(data)


@pytest.mark.parametrize("data, message", [
    (b"", "mem.tsv: the file is empty"),
    (HEADER.encode(), "mem.tsv: the file has a header but no data rows"),
    (b"1\t1\t2\ta\tb\t1\n", "mem.tsv: line 1: expected the header"),
    (b"id,qid1,qid2,question1,question2,is_duplicate\n1,1,2,a,b,1\n",
     "mem.tsv: line 1: expected the header"),
    (b"id\tquestion1\tquestion2\n1\ta\tb\n", "mem.tsv: line 1: this is an unlabeled GLUE test file"),
])
def test_bad_files_are_rejected(data, message):
    with pytest.raises(QqpDataError) as error:
        _read(data)
    assert message in str(error.value)


def test_hf_records_use_glue_column_names():
    records = [{"question1": "a", "question2": "b", "label": 1, "idx": 4}]
    assert list(pairs_from_records(records, "glue")) == [QqpPair(4, "a", "b", 1)]


def test_hf_unlabeled_test_split_is_rejected():
    records = [{"question1": "a", "question2": "b", "label": -1, "idx": 0}]
    with pytest.raises(QqpDataError, match="glue: row 1: label is -1"):
        list(pairs_from_records(records, "glue"))


def test_local_parquet_and_arrow_files(tmp_path: Path):
    import datasets  # pylint: disable=import-outside-toplevel
    data = {"question1": ["How?", "Why?"], "question2": ["How so?", ""], "label": [1, 0],
            "idx": [10, 11]}
    good = {key: values[:1] for key, values in data.items()}
    datasets.Dataset.from_dict(good).to_parquet(str(tmp_path / "train.parquet"))
    assert list(read_pairs(str(tmp_path / "train.parquet"))) == [QqpPair(10, "How?", "How so?", 1)]

    datasets.Dataset.from_dict(data).save_to_disk(str(tmp_path / "saved"))
    arrow_file = next((tmp_path / "saved").glob("*.arrow"))
    with pytest.raises(QqpDataError, match=r"\.arrow: row 2: question2 is empty"):
        list(read_pairs(str(arrow_file)))


def test_hf_file_without_qqp_columns(tmp_path: Path):
    import datasets  # pylint: disable=import-outside-toplevel
    path = tmp_path / "other.parquet"
    datasets.Dataset.from_dict({"text": ["a"]}).to_parquet(str(path))
    with pytest.raises(QqpDataError, match="missing column.*question1, question2"):
        list(read_pairs(str(path)))


def test_unsupported_file_type(tmp_path: Path):
    with pytest.raises(QqpDataError, match="unsupported file type"):
        list(read_pairs(str(tmp_path / "data.csv")))
