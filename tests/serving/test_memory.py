"""The serving check's memory figure counts the worker's own address space, not its parent's."""

import subprocess
import sys

import pytest

from components.serving.memory import peak_rss_mib

PARENT_BLOCK_MIB = 600


def test_a_worker_started_by_a_large_process_reports_its_own_peak():
    block = b"x" * (PARENT_BLOCK_MIB << 20)  # written, so resident in this (parent) process
    assert peak_rss_mib() > PARENT_BLOCK_MIB
    child = subprocess.run(
        [sys.executable, "-c",
         "from components.serving.memory import peak_rss_mib; print(peak_rss_mib())"],
        check=True, capture_output=True, text=True)
    # A bare Python interpreter: tens of MiB. ru_maxrss would report the parent's peak here.
    assert float(child.stdout) < 100, child.stdout
    del block


def test_a_missing_status_file_is_an_error_in_words(tmp_path):
    with pytest.raises(RuntimeError, match="cannot read this process's peak memory"):
        peak_rss_mib(str(tmp_path / "no-status"))
