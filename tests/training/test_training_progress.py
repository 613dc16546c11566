"""The whole-run ETA printed after each training epoch."""

from __future__ import annotations

import datetime
import io

from components.training.progress import TrainingEta


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def _run_epochs(callback: TrainingEta, clock: _Clock, epochs: range, minutes: float) -> None:
    for epoch in epochs:
        callback.on_epoch_begin(epoch)
        clock.seconds += minutes * 60
        callback.on_epoch_end(epoch)
    callback.on_train_end()


def test_time_left_is_the_mean_epoch_times_the_epochs_left():
    clock, stream = _Clock(), io.StringIO()
    callback = TrainingEta(4, stream=stream, clock=clock,
                           now=lambda: datetime.datetime(2026, 1, 1, 12, 0))
    _run_epochs(callback, clock, range(2), minutes=12)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0] == ("Training: epoch 1/4 done, 12.0 min elapsed, "
                        "about 36.0 min left (ends about 12:36)")
    assert lines[1] == ("Training: epoch 2/4 done, 24.0 min elapsed, "
                        "about 24.0 min left (ends about 12:24)")


def test_a_resumed_run_counts_only_its_own_epochs_and_the_last_line_has_no_eta():
    clock, stream = _Clock(), io.StringIO()
    callback = TrainingEta(3, stream=stream, clock=clock,
                           now=lambda: datetime.datetime(2026, 1, 1, 9, 0))
    _run_epochs(callback, clock, range(1, 3), minutes=10)  # epoch 0 came from a backup
    assert stream.getvalue().splitlines() == [
        "Training: epoch 2/3 done, 10.0 min elapsed, about 10.0 min left (ends about 09:10)",
        "Training: epoch 3/3 done, 20.0 min elapsed"]


def test_the_line_waits_for_the_progress_bar_to_finish_the_epoch():
    """Keras' progress bar ends an epoch's line after the callbacks' on_epoch_end."""
    clock, stream = _Clock(), io.StringIO()
    callback = TrainingEta(2, stream=stream, clock=clock)
    callback.on_epoch_begin(0)
    clock.seconds += 60
    callback.on_epoch_end(0)
    assert stream.getvalue() == ""
    callback.on_epoch_begin(1)
    assert stream.getvalue().startswith("Training: epoch 1/2 done, 1.0 min elapsed")
