"""The quiet command line (pipeline/cli/quiet.py): library noise to the log, the rest shown."""

import subprocess
import sys
import textwrap
from pathlib import Path

from pipeline.cli.parser import build_parser
from pipeline.cli.quiet import LineFilter, LogSink, StreamFilter

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE = "/venv/lib/python3.10/site-packages"

NOISE = [
    "2026-11-30 05:10:27.103661: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] "
    "Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when "
    "one has already been registered",
    "2026-11-30 05:10:27.128237: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:10575]"
    " Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when "
    "one has already been registered",
    "E0000 00:00:1732948227.128310    4242 cuda_blas.cc:1418] Unable to register cuBLAS factory: "
    "Attempting to register factory for plugin cuBLAS when one has already been registered",
    "2026-11-30 05:10:27.2: I tensorflow/core/platform/cpu_feature_guard.cc:210] This TensorFlow "
    "binary is optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "2026-11-30 05:10:27.3: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on. "
    "You may see slightly different numerical results due to floating-point round-off errors.",
    "2026-11-30 05:11:14.988331: E tensorflow/core/util/util.cc:131] oneDNN supports DT_INT64 "
    "only on platforms with AVX-512. Falling back to the default Eigen-based implementation.",
    "2026-11-30 05:10:28.1: W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT "
    "Warning: Could not find TensorRT",
    "TensorFlow and JAX classes are deprecated and will be removed in Transformers v5. We "
    "recommend migrating to PyTorch classes or pinning your version of Transformers.",
    "Some weights of the PyTorch model were not used when initializing the TF 2.0 model "
    "TFBertModel: ['embeddings.position_ids']",
    "- This IS expected if you are initializing TFBertModel from a PyTorch model trained on "
    "another task or with another architecture.",
    "- This IS NOT expected if you are initializing TFBertModel from a PyTorch model that you "
    "expect to be exactly identical.",
    "All the weights of TFBertModel were initialized from the PyTorch model.",
    "If your task is similar to the task the model of the checkpoint was trained on, you can "
    "already use TFBertModel for predictions without further training.",
    "  warning: `custom_executor_spec` is deprecated. Please customize component directly.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796038642.083810   19279 service.cc:145] XLA service 0x7f9fec006210 "
    "initialized for platform Host (this does not guarantee that XLA will be used). Devices:",
    "I0000 00:00:1796038642.083890   19279 service.cc:153]   StreamExecutor device (0): Host, "
    "Default Version",
    "I0000 00:00:1796038642.156672   19279 device_compiler.h:188] Compiled cluster using XLA!  "
    "This line is logged at most once for the lifetime of the process.",
    f"{SITE}/tensorflow_model_analysis/metrics/binary_confusion_matrices.py:155: "
    "RuntimeWarning: invalid value encountered in divide",
    "  false_omission_rate = fn / predicated_negatives",
    f"{SITE}/tensorflow_model_analysis/metrics/confusion_matrix_metrics.py:546: RuntimeWarning: "
    "divide by zero encountered in divide",
    "  p[:num_thresholds - 1] / np.maximum(p[1:], 0), np.ones_like(p[1:]))",
    f"WARNING:tensorflow:From {SITE}/tensorflow_model_analysis/writers/"
    "metrics_plots_and_validations_writer.py:112: tf_record_iterator (from "
    "tensorflow.python.lib.io.tf_record) is deprecated and will be removed in a future version.",
    "Instructions for updating:",
    "Use eager execution and: ",
    "`tf.data.TFRecordDataset(path)`",
    # Last: the tests below take these two.
    f"{SITE}/tfx/types/artifact.py:12: DeprecationWarning: something old",
    "  warnings.warn(",
]

REAL = [
    "▶ Trainer ...",
    "2026-11-30 05:12:00.1: E tensorflow/core/framework/op_kernel.cc:1816] OP_REQUIRES failed "
    "at conv_ops.cc:1068 : RESOURCE_EXHAUSTED: OOM when allocating tensor",
    # Unused weights besides position_ids: a real problem, shown with its explanation.
    "Some weights of the PyTorch model were not used when initializing the TF 2.0 model "
    "TFBertModel: ['classifier.weight', 'embeddings.position_ids']",
    "- This IS expected if you are initializing TFBertModel from a PyTorch model trained on "
    "another task or with another architecture.",
    # A warning of the project's own code, with its source line.
    "/work/main/pipeline/cli/scoring.py:40: RuntimeWarning: invalid value encountered in divide",
    "  ratio = a / b",
    "/work/main/components/training/trainer.py:10: UserWarning: the learning rate is 0",
    "  warnings.warn(",
    "  warning: Examples artifact is missing a split",
]

# A traceback right after a noise warning: none of it is taken for the warning's source line.
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/work/main/pipeline/cli/__init__.py", line 1, in main',
    "    raise ValueError('boom')",
    "ValueError: boom",
]


def _filter(lines: list[str]) -> tuple[list[str], list[str]]:
    shown, logged = [], []
    stream = StreamFilter(shown.append, logged.append)
    for line in lines:
        stream.feed(line.encode() + b"\n")
    stream.close()
    return ([line.decode().rstrip("\n") for line in shown],
            [line.decode().rstrip("\n") for line in logged])


# Lines of NOISE that belong to the line before them.
CONTINUATIONS = {4, 10, 11, 13, 16, 18, 20, 21, 22, 24}


def test_noise_goes_to_the_log_and_real_lines_to_the_screen():
    units = []  # each noise line with its continuation lines
    for index, line in enumerate(NOISE):
        if index in CONTINUATIONS:
            units[-1].append(line)
        else:
            units.append([line])
    interleaved = []
    for index, unit in enumerate(units):
        interleaved += unit + REAL[index:index + 1]
    interleaved += REAL[len(units):]
    shown, logged = _filter(interleaved)
    assert shown == REAL
    assert sorted(logged) == sorted(NOISE)


def test_a_traceback_after_a_noise_warning_is_shown_whole():
    shown, logged = _filter(NOISE[-2:] + TRACEBACK + NOISE[-2:])
    assert shown == TRACEBACK
    assert logged == NOISE[-2:] * 2


def test_only_a_warnings_source_line_goes_with_it():
    shown, logged = _filter(NOISE[15:17] + [REAL[-1]])
    assert shown == [REAL[-1]]
    assert logged == NOISE[15:17]


def test_a_tensorflow_deprecation_takes_its_instructions_only():
    shown, logged = _filter(NOISE[19:23] + TRACEBACK + NOISE[19:22] + REAL[:2]
                            + NOISE[19:22] + REAL[6:8])
    assert shown == TRACEBACK + REAL[:2] + REAL[6:8]
    assert logged == NOISE[19:23] + NOISE[19:22] * 2


def test_a_continuation_line_alone_is_not_noise():
    lines = ["- This IS expected if you are initializing TFBertModel from a PyTorch model.",
             "  warnings.warn("]
    assert not any(LineFilter().is_noise(line) for line in lines)


def test_progress_bars_pass_at_once_and_whole():
    shown, logged = [], []
    stream = StreamFilter(shown.append, logged.append)
    stream.feed(b"\r 10%|#         | 1/10")
    assert shown == [b"\r 10%|#         | 1/10"]  # before any line end
    stream.feed(b"\r100%|##########| 10/10\n" + NOISE[0].encode() + b"\n")
    stream.feed(b"qqp-tfx: waiting")
    stream.flush_partial()  # what the reader thread does after a quiet moment
    stream.feed(b" ... done\n")
    assert b"".join(shown) == (b"\r 10%|#         | 1/10\r100%|##########| 10/10\n"
                               b"qqp-tfx: waiting ... done\n")
    assert logged == [NOISE[0].encode() + b"\n"]


def test_the_log_waits_in_memory_for_its_path(tmp_path):
    sink = LogSink()
    sink.write(b"early\n")
    assert sink.path is None
    sink.set_path(str(tmp_path / "logs" / "run.log"))
    sink.write(b"late\n")
    sink.close(lambda: "unused")
    assert (tmp_path / "logs" / "run.log").read_bytes() == b"early\nlate\n"
    assert sink.lines == 2


def test_every_command_that_loads_tensorflow_takes_verbose():
    parser = build_parser()
    for command in ("predict --model m --question1 a --question2 b", "evaluate --model m --input f",
                    "report", "compile", "run-compiled spec.json --local-root r", "run"):
        assert parser.parse_args(command.split() + ["--verbose"]).verbose


PARENT = textwrap.dedent("""
    import subprocess, sys
    from pipeline.cli import quiet
    if sys.argv[1] == "quiet":
        quiet.start("test", sys.argv[2])
    child = ("import os; "
             "os.write(2, b'2026-11-30 05:11:14.988331: E tensorflow/core/util/util.cc:131] "
             "oneDNN supports DT_INT64 only on platforms with AVX-512. Falling back.\\\\n'); "
             "os.write(2, b'2026-11-30 05:11:15.0: E tensorflow/core/kernels/x.cc:1] real "
             "error\\\\n')")
    try:
        subprocess.run([sys.executable, "-c", child], check=True)
        print("result on stdout", flush=True)
        raise RuntimeError("a real failure")
    finally:
        quiet.stop()
""")


def _parent(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PARENT, mode, str(tmp_path / "logs" / "t.log")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_a_child_process_noise_is_filtered_from_the_parents_stderr(tmp_path):
    result = _parent(tmp_path, "quiet")
    assert result.returncode == 1
    assert result.stdout == "result on stdout\n"
    assert "oneDNN supports DT_INT64" not in result.stderr
    assert "real error" in result.stderr
    assert "RuntimeError: a real failure" in result.stderr.splitlines()[-1]
    assert f"qqp-tfx: library log (hidden on screen; --verbose shows it): {tmp_path}" \
           in result.stderr
    assert "oneDNN supports DT_INT64" in (tmp_path / "logs" / "t.log").read_text()


def test_without_the_filter_a_child_process_noise_is_shown(tmp_path):
    result = _parent(tmp_path, "verbose")
    assert result.returncode == 1
    assert "oneDNN supports DT_INT64" in result.stderr
    assert "real error" in result.stderr
    assert "library log" not in result.stderr
    assert not (tmp_path / "logs").exists()


def test_progress_shows_warnings_but_not_the_known_noise(capsys, monkeypatch):
    """The progress handler consults the one noise list (`quiet.NOISE`): TFX's known
    warnings go to the log file only, other warnings reach the screen."""
    import logging  # pylint: disable=import-outside-toplevel

    from pipeline.cli import progress  # pylint: disable=import-outside-toplevel

    logged: list[str] = []
    monkeypatch.setattr(progress, "_to_log", logged.append)
    handler = progress.ComponentProgressHandler()
    for message in ("ArtifactQuery.property_predicate is not supported.",
                    "Examples artifact is missing a split"):
        handler.emit(logging.LogRecord("absl", logging.WARNING, __file__, 1, message, None,
                                       None))
    assert capsys.readouterr().err == "  warning: Examples artifact is missing a split\n"
    assert len(logged) == 1 and "ArtifactQuery.property_predicate" in logged[0]
