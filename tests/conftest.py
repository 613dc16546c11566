"""Shared test setup: tf-keras for transformers, quiet TensorFlow, small data helpers."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "data" / "qqp_sample"
HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"


def write_tsv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    """Writes a GLUE-format TSV with the given raw data lines (without line ends)."""
    path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def sample_rows(split_file: str, count: int) -> list[str]:
    """The first `count` data lines of a bundled sample file."""
    lines = (SAMPLE_DIR / split_file).read_text(encoding="utf-8").splitlines()
    return lines[1:count + 1]


@pytest.fixture
def small_qqp_dir(tmp_path: Path) -> Path:
    """A directory with a 120-pair train.tsv and a 40-pair dev.tsv from the bundled sample."""
    directory = tmp_path / "qqp"
    directory.mkdir()
    write_tsv(directory / "train.tsv", sample_rows("train.tsv", 120))
    write_tsv(directory / "dev.tsv", sample_rows("dev.tsv", 40))
    return directory


# The slowest test files, longest first. make test runs pytest-xdist with whole files per
# worker in collection order (--dist loadfile --no-loadscope-reorder), so these start at
# once on both workers and the short files fill in after them.
SLOWEST_FILES_FIRST = ("test_run_compiled.py", "test_families.py", "test_pipeline_e2e.py",
                       "test_spans_e2e.py", "test_serving_check.py", "test_gate.py",
                       "test_training_resume.py", "test_pusher.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Moves the slowest files to the front (the order within each file is kept)."""
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return (SLOWEST_FILES_FIRST.index(name) if name in SLOWEST_FILES_FIRST
                else len(SLOWEST_FILES_FIRST))

    items.sort(key=rank)
