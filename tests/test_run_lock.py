"""One run per metadata store: a live holder stops a second run; a dead one's lock is taken over."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.run_lock import RunLockedError, run_lock


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_run_on_the_same_store_stops_at_once(tmp_path: Path, capsys):
    metadata = tmp_path / "m.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pipeline.run_lock import run_lock\n"
         "with run_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
         str(metadata)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} on {socket.gethostname()}"):
            with run_lock(str(metadata)):
                pass
        code = cli.main(["run", "--metadata", str(metadata), "--pipeline-root",
                         str(tmp_path / "root"), "--until", "QqpExampleGen"])
        assert code == cli.EXIT_BAD_INPUT
        error = capsys.readouterr().err
        assert f"is in use by another qqp-tfx run (pid {holder.pid}" in error
        assert "Traceback" not in error
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over_and_released(tmp_path: Path):
    metadata = tmp_path / "m.sqlite"
    lock = Path(f"{metadata}.lock")
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(),
                                "started": "earlier"}))
    with run_lock(str(metadata)):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
