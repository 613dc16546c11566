"""Resolving --data into ExampleGen splits, including Hugging Face datasets on local files."""

from pathlib import Path

import pytest

from components.data.records import QqpDataError
from pipeline.data_inputs import (SINGLE_FILE_BUCKETS, materialize_hf_dataset, parse_hf_name,
                                  resolve_data)
from tests.conftest import write_tsv


def test_directory_with_train_and_dev(small_qqp_dir: Path, tmp_path: Path):
    data_input = resolve_data(str(small_qqp_dir), str(tmp_path / "dl"))
    assert data_input.input_base == str(small_qqp_dir)
    assert data_input.split_patterns == {"train": "train.tsv", "eval": "dev.tsv"}
    assert data_input.hash_buckets is None


def test_single_file_is_hash_split(small_qqp_dir: Path, tmp_path: Path):
    data_input = resolve_data(str(small_qqp_dir / "dev.tsv"), str(tmp_path))
    assert data_input.split_patterns == {"all": "dev.tsv"}
    assert data_input.hash_buckets == SINGLE_FILE_BUCKETS


def test_missing_path(tmp_path: Path):
    with pytest.raises(QqpDataError, match="nope.tsv: no such file or directory"):
        resolve_data(str(tmp_path / "nope.tsv"), str(tmp_path))


def test_directory_with_only_test_file(tmp_path: Path):
    write_tsv(tmp_path / "test.tsv", ["1\ta\tb"], header="id\tquestion1\tquestion2\n")
    with pytest.raises(QqpDataError, match="holds only unlabeled test files"):
        resolve_data(str(tmp_path), str(tmp_path / "dl"))


def test_directory_without_eval_file(small_qqp_dir: Path, tmp_path: Path):
    (small_qqp_dir / "dev.tsv").unlink()
    with pytest.raises(QqpDataError, match=r"has no eval file \(dev.tsv, validation"):
        resolve_data(str(small_qqp_dir), str(tmp_path))


def test_parse_hf_name():
    assert parse_hf_name("nyu-mll/glue") == ("nyu-mll/glue", "qqp")
    assert parse_hf_name("nyu-mll/glue:mrpc") == ("nyu-mll/glue", "mrpc")
    assert parse_hf_name("me/qqp-copy") == ("me/qqp-copy", None)


def test_hf_dataset_is_loaded_and_written_as_parquet(tmp_path: Path):
    """`hf:` goes through datasets.load_dataset; here on a local parquet dataset repo."""
    import datasets  # pylint: disable=import-outside-toplevel
    repo = tmp_path / "repo"
    repo.mkdir()
    rows = {"question1": ["a?", "b?"], "question2": ["c?", "d?"], "idx": [0, 1]}
    for split, label in (("train", [1, 0]), ("validation", [0, 0]), ("test", [-1, -1])):
        datasets.Dataset.from_dict({**rows, "label": label}).to_parquet(str(repo / f"{split}.parquet"))
    data_input = resolve_data(f"hf:{repo}", str(tmp_path / "dl"))
    assert data_input.split_patterns == {"train": "train*.parquet", "eval": "validation*.parquet"}
    written = sorted(path.name for path in Path(data_input.input_base).iterdir())
    assert written == ["train.parquet", "validation.parquet"]  # the unlabeled test split is not
    # The same under a remote pipeline root (TF's in-memory filesystem stands in for gs://).
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    remote = resolve_data(f"hf:{repo}", f"ram://root-{tmp_path.name}/hf_datasets")
    assert remote.input_base.startswith("ram://") and remote.split_patterns == (
        data_input.split_patterns)
    assert sorted(fileio.listdir(remote.input_base)) == ["train.parquet", "validation.parquet"]


def test_hf_dataset_without_validation_split(tmp_path: Path):
    import datasets  # pylint: disable=import-outside-toplevel
    repo = tmp_path / "repo"
    repo.mkdir()
    datasets.Dataset.from_dict({"question1": ["a"], "question2": ["b"], "idx": [0], "label": [0]}
                               ).to_parquet(str(repo / "train.parquet"))
    with pytest.raises(QqpDataError, match=r"lacks the labeled split\(s\) \['validation'\]"):
        materialize_hf_dataset(str(repo), str(tmp_path / "dl"))


def test_remote_directories_are_resolved_like_local_ones(small_qqp_dir: Path, tmp_path: Path):
    import uuid  # pylint: disable=import-outside-toplevel

    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    remote = f"ram://qqp-{uuid.uuid4().hex}"
    fileio.makedirs(f"{remote}/hf/train")
    fileio.makedirs(f"{remote}/hf/validation")
    for split in ("train", "validation"):  # an HF save_to_disk layout, not train.tsv/dev.tsv
        with fileio.open(f"{remote}/hf/{split}/data-00000-of-00001.arrow", "wb") as stream:
            stream.write(b"arrow")
    data_input = resolve_data(f"{remote}/hf", str(tmp_path))
    assert data_input.input_base == f"{remote}/hf"
    assert data_input.split_patterns == {"train": "train/*.arrow", "eval": "validation/*.arrow"}
    fileio.copy(str(small_qqp_dir / "dev.tsv"), f"{remote}/all.tsv")
    single = resolve_data(f"{remote}/all.tsv", str(tmp_path))
    assert (single.input_base, single.split_patterns) == (remote, {"all": "all.tsv"})
    with pytest.raises(QqpDataError, match="no such file or directory"):
        resolve_data(f"{remote}/missing", str(tmp_path))


def test_a_directory_of_spans_reads_the_newest_span_when_exampleGen_runs(small_qqp_dir: Path,
                                                                         tmp_path: Path):
    spans = tmp_path / "weekly"
    for number in (1, 2, 10):
        (spans / f"span-{number}").mkdir(parents=True)
        for name in ("train.tsv", "dev.tsv"):
            (spans / f"span-{number}" / name).write_bytes((small_qqp_dir / name).read_bytes())
    (spans / "span-x").mkdir()  # not a span: ignored
    data_input = resolve_data(str(spans), str(tmp_path / "dl"))
    assert data_input.input_base == str(spans)
    assert data_input.split_patterns == {"train": "span-{SPAN}/train.tsv",
                                         "eval": "span-{SPAN}/dev.tsv"}
    assert (data_input.spans, data_input.span) == ((1, 2, 10), None)
    assert resolve_data(str(spans), str(tmp_path / "dl"), span=2).span == 2
    with pytest.raises(QqpDataError, match=r"has no span-3 folder; spans found: 1, 2, 10"):
        resolve_data(str(spans), str(tmp_path / "dl"), span=3)
    (spans / "span-10" / "dev.tsv").unlink()  # the newest span sets the layout: checked here
    with pytest.raises(QqpDataError, match=r"span-10: has no eval file"):
        resolve_data(str(spans), str(tmp_path / "dl"))


def test_span_needs_a_directory_of_spans(small_qqp_dir: Path, tmp_path: Path):
    with pytest.raises(QqpDataError, match="--span 1 given, but the directory holds no span-N"):
        resolve_data(str(small_qqp_dir), str(tmp_path), span=1)
    with pytest.raises(QqpDataError, match="--span needs a directory of span-N folders"):
        resolve_data(str(small_qqp_dir / "dev.tsv"), str(tmp_path), span=1)


def test_a_remote_span_pattern_is_taken_as_glue_spans_without_listing(tmp_path: Path):
    data_input = resolve_data("gs://b/qqp/span-{SPAN}", str(tmp_path), look_at_remote=False)
    assert data_input.input_base == "gs://b/qqp"
    assert data_input.split_patterns == {"train": "span-{SPAN}/train.tsv",
                                         "eval": "span-{SPAN}/dev.tsv"}
