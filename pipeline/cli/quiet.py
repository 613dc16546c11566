"""A quiet command line: known library noise is filtered out of standard error, by message.

`start()` runs before TensorFlow is imported. It points file descriptor 2 at a pipe that a
thread reads line by line: a line matching one of `NOISE` (and the lines that belong to it,
such as the source line under a Python warning) goes to a log file only; every other line
goes to the real standard error at once. The descriptor is redirected, not `sys.stderr`,
because TensorFlow's C++ code and any subprocess write to descriptor 2 directly. Lines
written with `\\r` (tqdm's progress bars) and lines that stay unfinished for a moment pass
straight through, so progress bars keep updating in place. Standard output is left alone:
it carries the commands' results (and Keras' progress bar).

`stop()` (also run at exit) drains the pipe, restores descriptor 2 and prints the log's
path once. The log (with the TFX and Beam logs `pipeline/cli/progress.py` does not show) is
`<pipeline root>/logs/run-<timestamp>.log` for `run` once the pipeline starts (see
`set_log_path`; until then it waits in memory), `<local root>/logs/...` for
`run-compiled`, else `<temp dir>/qqp-tfx-logs/<command>-<timestamp>.log`, created only
when something was filtered. `--verbose` does not start the filter at all.
"""

from __future__ import annotations

import array
import atexit
import fcntl
import os
import re
import select
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable

# A TensorFlow/XLA C++ log line's prefix: "2026-11-30 05:10:27.103661: E path/file.cc:479] "
# (TF's own logging) or "E0000 00:00:1700000000.123456   1234 file.cc:479] " (absl's).
_TF_LOG = (r"(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+\] "
           r"|[IWEF]\d{4} [\d:.]+\s+\d+ \S+\] )")
# A Python warning as `warnings` prints it: "/path/module.py:12: SomeWarning: message".
_PY_WARNING = r"\S.*:\d+: "
# The source line `warnings` prints under a warning, indented by two spaces.
_WARNING_SOURCE = r"  \S"
# A line that does not start a log record, a traceback or a line of this CLI's own.
_NOT_A_NEW_RECORD = (r"(?!Traceback|WARNING:|ERROR:|CRITICAL:|qqp-tfx|\u25b6|\u2714|  warning:"
                     r"|  error:|[IWEF]\d{4} |\d{4}-\d\d-\d\d |\S+\.py:\d+: )\S")


@dataclass(frozen=True)
class Noise:
    """A noise line, and the lines right after it that belong to it: the first line after
    it is dropped too if it matches `continuation[0]`, the next if it matches
    `continuation[1]`, and so on; the first line that does not match is filtered anew."""

    line: re.Pattern[str]
    continuation: tuple[re.Pattern[str], ...] = ()


def _noise(line: str, *continuation: str) -> Noise:
    return Noise(re.compile(line), tuple(re.compile(pattern) for pattern in continuation))


NOISE: tuple[Noise, ...] = (
    # TensorFlow and jaxlib/XLA both register the CUDA plugins at import (cuda_fft.cc,
    # cuda_dnn.cc, cuda_blas.cc); harmless, printed even without a GPU.
    _noise(_TF_LOG + r"Unable to register cu(?:FFT|DNN|BLAS) factory: "),
    # tensorflow/core/platform/cpu_feature_guard.cc: the wheel is not built for this CPU's
    # instructions; the second line is part of the same message.
    _noise(_TF_LOG + r"This TensorFlow binary is optimized to use available CPU instructions",
           r"To enable the following instructions: .* rebuild TensorFlow with"),
    # tensorflow/core/util/port.cc: oneDNN is on by default on x86.
    _noise(_TF_LOG + r"oneDNN custom operations are on\. "),
    # tensorflow/core/util/util.cc: int64 ops (TFT's vocabulary) fall back to Eigen.
    _noise(_TF_LOG + r"oneDNN supports DT_INT64 only on platforms with AVX-512\. "),
    # tensorflow/compiler/tf2tensorrt (and its Python wrapper): TensorRT is not installed.
    _noise(r"(?:" + _TF_LOG + r")?TF-TRT Warning: Could not find TensorRT"),
    # stream_executor/cuda/cuda_executor.cc (and tensorflow/tsl/cuda): no GPU here.
    _noise(_TF_LOG + r"Could not find cuda drivers on your machine, GPU will not be used\."),
    # tensorflow/core/framework/local_rendezvous.cc: a tf.data iterator ended (every epoch).
    _noise(_TF_LOG + r"Local rendezvous is aborting with status: OUT_OF_RANGE: End of sequence"),
    # XLA, when the Trainer's fused kernels (components/kernels/training.py) first compile:
    # absl's notice before its logging starts, the CPU "device" XLA uses (two lines) and
    # "Compiled cluster using XLA!", each once per process.
    _noise(r"WARNING: All log messages before absl::InitializeLog\(\) is called are written "
           r"to STDERR$"),
    _noise(_TF_LOG + r"XLA service 0x[0-9a-f]+ initialized for platform Host ",
           _TF_LOG + r"  StreamExecutor device \(\d+\): Host, Default Version$"),
    _noise(_TF_LOG + r"Compiled cluster using XLA!  This line is logged at most once "),
    # transformers (utils/import_utils.py), once per process: TF classes are deprecated.
    _noise(r"TensorFlow and JAX classes are deprecated and will be removed in Transformers v5\."),
    # transformers (modeling_tf_pytorch_utils.py) loading PyTorch weights into TF: the only
    # unused weight is the position_ids buffer, which TF models do not have. Its two
    # "- This IS (NOT) expected" lines go with it. Other unused weights stay on screen.
    _noise(r"Some weights of the PyTorch model were not used when initializing the TF 2\.0 "
           r"model \w+: \[(?:'[\w.]*position_ids',? ?)+\]$",
           r"- This IS expected if you are initializing ",
           r"- This IS NOT expected if you are initializing "),
    # transformers, same place: every weight loaded (good news), with its second line.
    _noise(r"All the weights of \w+ were initialized from the PyTorch model\.$",
           r"If your task is similar to the task the model of the checkpoint was trained on"),
    # Warnings of absl/TFX records, as pipeline/cli/progress.py words them ("  warning: ..."):
    # TFX (dsl/components/base/base_component.py): our components set custom_executor_spec
    # on purpose; TFX 1.16's resolver and ExampleGen on every run; TFT traces the vocabulary
    # table inside a tf.function by design.
    _noise(r"  warning: `custom_executor_spec` is deprecated\. Please customize component "
           r"directly\.$"),
    _noise(r"  warning: ArtifactQuery\.property_predicate is not supported\."),
    _noise(r"  warning: Tables initialized inside a tf\.function"),
    _noise(r"  warning: Examples artifact does not have payload_format custom property\."),
    # TensorFlow's deprecation notices (tensorflow/python/util/deprecation.py) for calls from
    # inside the installed libraries (TFMA's tf_record_iterator in `report`): the notice,
    # "Instructions for updating:" and up to three lines of instructions.
    _noise(r"WARNING:tensorflow:From \S*/site-packages/\S+\.py:\d+: .* is deprecated and "
           r"will be removed (?:in a future version|after)",
           r"Instructions for updating:$", *[_NOT_A_NEW_RECORD] * 3),
    # TFX/TFMA/TF DeprecationWarning and FutureWarning from inside the libraries.
    _noise(_PY_WARNING + r"(?:Deprecation|PendingDeprecation|Future)Warning: ",
           _WARNING_SOURCE),
    # numpy inside TFMA (and TFDV) computing metrics of empty slices or constant columns:
    # "divide by zero encountered in ..." / "invalid value encountered in ...".
    _noise(r"\S*(?:numpy|tensorflow_model_analysis|tensorflow_data_validation)/\S+\.py:\d+: "
           r"RuntimeWarning: (?:divide by zero|invalid value) encountered in ",
           _WARNING_SOURCE),
)


class LineFilter:
    """Decides, line by line, whether a line is noise (with its continuation lines)."""

    def __init__(self, noise: tuple[Noise, ...] = NOISE) -> None:
        self._noise = noise
        self._continuation: tuple[re.Pattern[str], ...] = ()

    def is_noise(self, line: str) -> bool:
        """Whether `line` (without its line end) is noise; call once per line, in order."""
        for noise in self._noise:  # a noise line starts a new unit, even as a continuation
            if noise.line.match(line):
                self._continuation = noise.continuation
                return True
        if self._continuation:
            expected, self._continuation = self._continuation[0], self._continuation[1:]
            if expected.match(line):
                return True
            self._continuation = ()
        return False

    def reset(self) -> None:
        """Forgets the last noise line: what comes next is not its continuation."""
        self._continuation = ()


class LogSink:
    """The log file of filtered lines: kept in memory until its path is known."""

    def __init__(self, path: str | None = None) -> None:
        self._path = path
        self._pending: list[bytes] = []
        self._file: BinaryIO | None = None
        self.lines = 0
        self._lock = threading.Lock()

    @property
    def path(self) -> str | None:
        """The log file, once it is written."""
        return self._path if self._file is not None else None

    def set_path(self, path: str) -> None:
        """Where the log goes; what was filtered before is written there too."""
        with self._lock:
            if self._file is None:
                self._path = path
                if self._pending:
                    self._open()

    def write(self, data: bytes) -> None:
        """Appends filtered bytes (whole lines)."""
        with self._lock:
            self.lines += data.count(b"\n")
            if self._file is None and self._path is not None:
                self._open()
            if self._file is None:
                self._pending.append(data)
            else:
                self._file.write(data)
                self._file.flush()

    def close(self, default_path: Callable[[], str]) -> None:
        """Writes what is still in memory (to `default_path()` when no path was set)."""
        with self._lock:
            if self._file is None and self._pending:
                if self._path is None:
                    self._path = default_path()
                self._open()
            if self._file is not None:
                self._file.close()

    def _open(self) -> None:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
            self._file = open(self._path, "ab")  # pylint: disable=consider-using-with
        except OSError:  # an unwritable directory must not break the command
            self._path = None
            return
        self._file.write(b"".join(self._pending))
        self._file.flush()
        self._pending = []


class StreamFilter:
    """Splits a byte stream into lines and sends each to the screen or the log.

    A line is held until its line end, except: data with a `\\r` (a progress bar) passes at
    once, and so does the rest of its line; `flush_partial()` (called after a short quiet
    moment) lets an unfinished line through, e.g. a prompt.
    """

    def __init__(self, screen: Callable[[bytes], None], log: Callable[[bytes], None],
                 line_filter: LineFilter | None = None) -> None:
        self._screen = screen
        self._log = log
        self._filter = line_filter or LineFilter()
        self._buffer = b""
        self._passing = False  # the current line was already (partly) shown

    def feed(self, data: bytes) -> None:
        """Processes `data`; complete lines leave at once."""
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line, self._buffer = self._buffer[:end + 1], self._buffer[end + 1:]
            if self._passing:
                self._passing = False
                self._screen(line)
            elif b"\r" in line.rstrip(b"\r\n"):  # a progress bar's last update
                self._filter.reset()
                self._screen(line)
            elif self._filter.is_noise(line.rstrip(b"\r\n").decode("utf-8", "replace")):
                self._log(line)
            else:
                self._screen(line)
        if b"\r" in self._buffer:
            self.flush_partial()

    def flush_partial(self) -> None:
        """Shows an unfinished line now; the rest of that line follows unfiltered."""
        if self._buffer:
            self._passing = True
            self._filter.reset()
            self._screen(self._buffer)
            self._buffer = b""

    def close(self) -> None:
        """Sends an unfinished last line where it belongs."""
        if self._buffer and not self._passing and self._filter.is_noise(
                self._buffer.decode("utf-8", "replace")):
            self._log(self._buffer + b"\n")
        elif self._buffer:
            self._screen(self._buffer)
        self._buffer = b""


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            written = os.write(fd, data)
        except InterruptedError:
            continue
        except OSError:  # the terminal went away: nothing else to do
            return
        data = data[written:]


class _Redirect:
    """Descriptor 2 through a pipe, read by a daemon thread into a `StreamFilter`."""

    # How long an unfinished line waits for the rest before it is shown anyway.
    PARTIAL_LINE_WAIT = 0.2

    def __init__(self, log: LogSink) -> None:
        self.log = log
        sys.stderr.flush()
        self.screen_fd = os.dup(2)
        os.set_inheritable(self.screen_fd, False)
        self._read_fd, self._write_fd = os.pipe()
        self._busy = threading.Lock()  # held while read data is being filtered
        self._filter = StreamFilter(lambda data: _write_all(self.screen_fd, data), log.write)
        os.dup2(self._write_fd, 2)
        self._thread = threading.Thread(target=self._pump, name="qqp-tfx-quiet", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            ready, _, _ = select.select([self._read_fd], [], [], self.PARTIAL_LINE_WAIT)
            with self._busy:
                if not ready:
                    self._filter.flush_partial()
                    continue
                try:
                    data = os.read(self._read_fd, 65536)
                except InterruptedError:
                    continue
                if not data:
                    self._filter.close()
                    break
                self._filter.feed(data)
        os.close(self._read_fd)

    def _unread(self) -> int:
        buffer = array.array("i", [0])
        fcntl.ioctl(self._read_fd, termios.FIONREAD, buffer)
        return buffer[0]

    def sync(self, timeout: float = 5.0) -> None:
        """Waits until everything written to descriptor 2 so far was shown or logged."""
        sys.stderr.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._busy:
                if self._unread() == 0:
                    return
            time.sleep(0.005)

    def stop(self) -> None:
        """Drains the pipe and points descriptor 2 back at the real standard error."""
        self.sync()
        os.dup2(self.screen_fd, 2)
        os.close(self._write_fd)
        # A subprocess that outlived us may still hold the pipe open: do not wait for it.
        self._thread.join(timeout=2.0)
        os.close(self.screen_fd)


_active: _Redirect | None = None
_command = "qqp-tfx"


def start(command: str, log_path: str | None = None) -> None:
    """Filters descriptor 2 from now on (call before TensorFlow is imported)."""
    global _active, _command  # pylint: disable=global-statement
    if _active is not None:
        return
    _command = command
    try:
        _active = _Redirect(LogSink(log_path))
    except OSError:  # no descriptor 2 (e.g. closed by the caller): stay unfiltered
        return
    atexit.register(stop)


def active() -> bool:
    """Whether the filter is running."""
    return _active is not None


def set_log_path(path: str) -> None:
    """Where filtered lines are logged (e.g. under the run's pipeline root)."""
    if _active is not None:
        _active.log.set_path(path)


def log_lines(text: str) -> None:
    """Writes `text` to the log only, e.g. library logs hidden from the screen."""
    if _active is not None:
        _active.log.write(text.encode("utf-8", "replace").rstrip(b"\n") + b"\n")


def sync() -> None:
    """Lets everything written to standard error so far reach the screen, e.g. before
    printing results to standard output."""
    if _active is not None:
        _active.sync()


def timestamp() -> str:
    """Names a log file: `YYYYmmdd-HHMMSS-<pid>` (two commands a second apart differ)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def stop() -> None:
    """Stops filtering, restores standard error and says where the log is (once)."""
    global _active  # pylint: disable=global-statement
    redirect, _active = _active, None
    if redirect is None:
        return
    redirect.stop()
    redirect.log.close(lambda: os.path.join(tempfile.gettempdir(), "qqp-tfx-logs",
                                            f"{_command}-{timestamp()}.log"))
    if redirect.log.path is not None:
        print(f"qqp-tfx: library log (hidden on screen; --verbose shows it): "
              f"{redirect.log.path}", file=sys.stderr, flush=True)
