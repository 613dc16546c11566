"""The peak resident memory of this process, counted from its own start (not its parent's).

`getrusage(RUSAGE_SELF).ru_maxrss` is the wrong figure for a worker started by a large
process: Linux carries the parent's peak into the child across fork and exec, so a
worker started by a pipeline process that trained a model reports that process's
gigabytes. `VmHWM` in `/proc/self/status` is the peak of this program's own address
space, which is what a version loaded in a fresh process (as TF Serving loads it) holds.
"""

from __future__ import annotations

STATUS_FILE = "/proc/self/status"


def peak_rss_mib(status_file: str = STATUS_FILE) -> float:
    """This process's peak resident memory (`VmHWM`), in MiB."""
    try:
        with open(status_file, encoding="ascii") as stream:
            for line in stream:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError as error:
        raise RuntimeError(f"{status_file}: cannot read this process's peak memory "
                           f"({error}); the serving check measures memory on Linux") from error
    raise RuntimeError(f"{status_file}: no VmHWM line; the serving check measures memory "
                       "on Linux")
