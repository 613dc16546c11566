"""How far fine-tuning is, and when it should end: one line after each epoch.

Keras' progress bar shows the time left in the current epoch only; a run of
several epochs (an hour for `configs/full.yaml`) also needs the time left in
the whole run.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import Any, Callable, TextIO

import tf_keras as keras


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class TrainingEta(keras.callbacks.Callback):
    """Prints epochs done, time elapsed and the estimated time left after each epoch.

    The estimate is the mean duration of the epochs this process trained, times
    the epochs left; a run resumed from a backup counts only its own epochs.
    The line is printed when the next epoch begins (or training ends), after
    Keras' progress bar has finished the epoch's line.
    """

    def __init__(self, epochs: int, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime.datetime] = datetime.datetime.now) -> None:
        super().__init__()
        self._epochs = epochs
        self._stream = stream
        self._clock = clock
        self._now = now
        self._started_at: float | None = None
        self._first_epoch = 0
        self._pending_line: str | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._print_pending_line()
        if self._started_at is None:
            self._started_at = self._clock()
            self._first_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        done = epoch + 1
        elapsed = self._clock() - self._started_at
        line = f"Training: epoch {done}/{self._epochs} done, {_minutes(elapsed)} elapsed"
        if done < self._epochs:
            left = elapsed / (done - self._first_epoch) * (self._epochs - done)
            ends = self._now() + datetime.timedelta(seconds=left)
            line += f", about {_minutes(left)} left (ends about {ends:%H:%M})"
        self._pending_line = line

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._print_pending_line()

    def _print_pending_line(self) -> None:
        if self._pending_line is not None:
            print(self._pending_line, file=self._stream or sys.stdout, flush=True)
            self._pending_line = None
