"""Concise progress output for pipeline runs: which component runs, and for how long."""

from __future__ import annotations

import logging
import re
import sys
import time

_COMPONENT_EVENT = re.compile(r"^Component (\S+) is (running|finished)\.$")
# Warnings TFX 1.16 emits on every run that mean nothing to the user.
_KNOWN_NOISE = (
    "ArtifactQuery.property_predicate is not supported.",
    "Tables initialized inside a tf.function",  # TFT traces the vocabulary table by design
    "Examples artifact does not have payload_format custom property.",
)


class ComponentProgressHandler(logging.Handler):
    """Prints one line when a TFX component starts or finishes, plus warnings and errors."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        event = _COMPONENT_EVENT.match(message)
        if event:
            component, state = event.groups()
            if state == "running":
                self._started[component] = time.monotonic()
                line = f"▶ {component} ..."
            else:
                elapsed = time.monotonic() - self._started.pop(component, time.monotonic())
                line = f"✔ {component} done in {elapsed:.1f} s"
        elif record.levelno >= logging.WARNING and not message.startswith(_KNOWN_NOISE):
            line = f"  {record.levelname.lower()}: {message.splitlines()[0] if message else ''}"
        else:
            return
        print(line, file=sys.stderr, flush=True)


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
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
