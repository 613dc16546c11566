"""Concise progress output for pipeline runs: which component runs, and for how long."""

from __future__ import annotations

import logging
import re
import sys
import time

from pipeline.cli import quiet

_COMPONENT_EVENT = re.compile(r"^Component (\S+) is (running|finished)\.$")


class ComponentProgressHandler(logging.Handler):
    """Prints one line when a TFX component starts or finishes, plus warnings and errors.

    What it does not print goes to the quiet command line's log file (`pipeline.cli.quiet`).
    """

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._started: dict[str, float] = {}
        self.setFormatter(_LOG_FORMAT)

    def emit(self, record: logging.LogRecord) -> None:
        line = self._screen_line(record)
        if line is None:
            _to_log(self.format(record))
        else:
            print(line, file=sys.stderr, flush=True)

    def _screen_line(self, record: logging.LogRecord) -> str | None:
        """The line to show for `record`, or None: the log file only."""
        message = record.getMessage()
        event = _COMPONENT_EVENT.match(message)
        if event:
            component, state = event.groups()
            if state == "running":
                self._started[component] = time.monotonic()
                return f"▶ {component} ..."
            elapsed = time.monotonic() - self._started.pop(component, time.monotonic())
            return f"✔ {component} done in {elapsed:.1f} s"
        if record.levelno < logging.WARNING:
            return None
        line = f"  {record.levelname.lower()}: {message.splitlines()[0] if message else ''}"
        # One list of noise (pipeline.cli.quiet), whether or not the filter runs.
        return None if quiet.LineFilter().is_noise(line) else line


_LOG_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _to_log(text: str) -> None:
    quiet.log_lines(text)


class LogFileHandler(logging.Handler):
    """Writes records to the quiet command line's log file only."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.setFormatter(_LOG_FORMAT)

    def emit(self, record: logging.LogRecord) -> None:
        _to_log(self.format(record))


def install(verbose: bool) -> None:
    """Routes absl/TFX logging to the concise handler unless `verbose` is set."""
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel

    if verbose:
        absl_logging.set_verbosity(absl_logging.INFO)
        return
    absl_logger = absl_logging.get_absl_logger()
    absl_logger.handlers = [ComponentProgressHandler()]
    absl_logger.propagate = False
    absl_logging.set_verbosity(absl_logging.INFO)
    # Beam logs each failing element with a traceback; the CLI reports the cause itself.
    # Its logs go to the log file only.
    beam_logger = logging.getLogger("apache_beam")
    screen = logging.StreamHandler()
    screen.setLevel(logging.CRITICAL)
    beam_logger.handlers = [LogFileHandler(), screen]
    beam_logger.propagate = False
    beam_logger.setLevel(logging.INFO)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
