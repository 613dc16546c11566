"""One run per metadata store: a kernel lock, released when its holder dies however it dies."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.run_lock import RunLockedError, run_lock

REPO = Path(__file__).parents[2]
HOLD = ("import sys, time; from pipeline.run_lock import run_lock\n"
        "with run_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)")


def _holder(metadata: Path) -> subprocess.Popen:
    """A process holding the lock of `metadata` until killed (once it has printed 'held')."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(metadata)],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_on_the_same_store_stops_at_once(tmp_path: Path, capsys):
    metadata = tmp_path / "m.sqlite"
    holder = _holder(metadata)
    try:
        with pytest.raises(RunLockedError, match=(
                f"lock {metadata}.lock, held by pid {holder.pid} on {socket.gethostname()} since")):
            with run_lock(str(metadata)):
                pass
        code = cli.main(["run", "--metadata", str(metadata), "--pipeline-root",
                         str(tmp_path / "root"), "--until", "QqpExampleGen"])
        assert code == cli.EXIT_BAD_INPUT
        error = capsys.readouterr().err
        assert (f"{metadata} is in use by another qqp-tfx run (lock {metadata}.lock, "
                f"held by pid {holder.pid} on {socket.gethostname()}") in error
        assert "Traceback" not in error
    finally:
        holder.kill()
        holder.wait()


def test_the_same_store_is_refused_within_one_process_too(tmp_path: Path):
    metadata = tmp_path / "m.sqlite"
    with run_lock(str(metadata)):
        with pytest.raises(RunLockedError, match=f"held by pid {os.getpid()} on "):
            with run_lock(str(metadata)):
                pass
    with run_lock(str(metadata)):  # released at the end of the run
        pass
    assert Path(f"{metadata}.lock").read_text() == ""  # kept, emptied


def test_the_lock_of_a_killed_run_is_free_at_once(tmp_path: Path):
    metadata = tmp_path / "m.sqlite"
    lock = Path(f"{metadata}.lock")
    holder = _holder(metadata)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads(lock.read_text())["pid"] == holder.pid  # left behind, with its holder
    with run_lock(str(metadata)):
        assert json.loads(lock.read_text())["pid"] == os.getpid()


RACE = """
import os, sys, time
from pipeline.run_lock import RunLockedError, run_lock
metadata, start, release = sys.argv[1:]
print("ready", flush=True)
while not os.path.exists(start):
    time.sleep(0.01)
try:
    with run_lock(metadata):
        print("ran", flush=True)
        deadline = time.monotonic() + 30  # bounds the wait if both ran anyway
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
except RunLockedError as error:
    print(f"refused: {error}", flush=True)
"""


def test_two_runs_racing_for_the_lock_of_a_killed_run_do_not_both_run(tmp_path: Path):
    metadata = tmp_path / "m.sqlite"
    killed = _holder(metadata)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    start, release = tmp_path / "start", tmp_path / "release"
    runs = [subprocess.Popen([sys.executable, "-c", RACE, str(metadata), str(start), str(release)],
                             stdout=subprocess.PIPE, text=True, cwd=REPO) for _ in range(2)]
    try:
        for run in runs:
            assert run.stdout.readline().strip() == "ready"
        start.touch()
        outputs = sorted(run.stdout.readline().strip() for run in runs)
        release.touch()  # the one that ran holds the lock until both have answered
        for run in runs:
            run.wait(timeout=120)
    finally:
        for run in runs:
            run.kill()
            run.wait()
    assert outputs[0] == "ran"
    assert outputs[1].startswith(f"refused: {metadata} is in use by another qqp-tfx run "
                                 f"(lock {metadata}.lock, held by pid ")
