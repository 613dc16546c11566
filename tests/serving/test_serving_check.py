"""The serving check: a candidate loads, answers, refuses bad requests, and is no slower and no
larger than the served version; the Pusher pushes nothing the check did not pass.

A tiny random BERT exported with the real `export_serving_model` passes against itself.
The other candidates are small SavedModels with the same scoring signatures and request
checks (`components.export.requests`) around a score made wrong or slow on purpose; the
slow one's check runs in the background while the tiny BERT is exported.
"""

import json
import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.util import model_utils
from tfx.types import artifact_utils, standard_artifacts

from components.export.requests import assert_as_many, parse_questions
from components.serving import check, check_worker, pusher, warmup
from components.serving.check_component import (BLESSED_FILE, NOT_BLESSED_FILE, RESULT_FILE,
                                                RESULT_KEY, ServingCheck)
from components.serving.layout import SERVED_VERSION_KEY, versions
from components.serving.tf_serving_session import ServingSession
from tests.conftest import sample_rows
from tests.serving.model_files import saved_model
from tests.serving.test_serving_api import _artifact, _transform_graph, _write_eval_split

EVAL_PAIRS = 80  # more than the largest warm-up batch (64)
SERVED_VERSION = 3
BF16 = False  # the check's parameter; the tests run the float32 session config anywhere
# Float64 products per pair in the slow score: ~40 ms a batch of 64, ~1 ms without them.
SLOW_STEPS, SLOW_WIDTH = 40, 512
_TEXT = [tf.TensorSpec([None], tf.string, name=name) for name in ("question1", "question2")]


def _length_score(question1: tf.Tensor, question2: tf.Tensor) -> tf.Tensor:
    """A probability in (0, 1) from the questions' lengths."""
    difference = tf.strings.length(question1) - tf.strings.length(question2)
    return tf.sigmoid(tf.cast(difference, tf.float32) / 10)


def _slow_score(question1: tf.Tensor, question2: tf.Tensor) -> tf.Tensor:
    """`_length_score` after SLOW_STEPS float64 products per pair (no bf16 rewrite applies)."""
    weights = tf.constant(np.random.default_rng(0).normal(
        0, SLOW_WIDTH ** -0.5, (SLOW_WIDTH, SLOW_WIDTH)))
    state = tf.tile(tf.cast(tf.strings.length(question1), tf.float64)[:, None] / 100,
                    [1, SLOW_WIDTH])
    _, state = tf.while_loop(lambda step, _: step < SLOW_STEPS,
                             lambda step, value: (step + 1, tf.tanh(value @ weights)),
                             (tf.constant(0), state))
    return _length_score(question1, question2) + tf.cast(0 * tf.reduce_sum(state, 1), tf.float32)


def _save_model(directory: Path, score, examples_score=None, refuse_mismatch: bool = True
                ) -> str:
    """A SavedModel with the scoring signatures of `export_serving_model` around `score`
    (`examples_score` for the tf.Example signatures; predict_text refuses lists of
    different lengths unless `refuse_mismatch` is off)."""
    examples_score = examples_score or score

    def outputs(probability: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probability": probability,
                "label": tf.cast(probability >= 0.5, tf.int64)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        question1, question2 = (tf.reshape(value, [-1]) for value in parse_questions(examples))
        return outputs(examples_score(question1, question2))

    @tf.function(input_signature=_TEXT)
    def predict_text(question1, question2):
        pairs = tf.minimum(tf.size(question1), tf.size(question2))
        checks = [assert_as_many(question1, question2)] if refuse_mismatch else []
        with tf.control_dependencies(checks):
            return outputs(score(question1[:pairs], question2[:pairs]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(inputs):
        probability = serve_examples(inputs)["probability"]
        return {"classes": tf.tile(tf.constant([[b"0", b"1"]]), [tf.size(probability), 1]),
                "scores": tf.stack([1 - probability, probability], 1)}

    tf.saved_model.save(tf.Module(), str(directory), signatures={
        "serving_default": serve_examples, "predict_text": predict_text,
        "classification": classify})
    return str(directory)


@pytest.fixture(scope="session")
def eval_pairs(tmp_path_factory) -> tuple[Path, list[warmup.Pair]]:
    """An ExampleGen-like Examples directory with an eval split, and its pairs."""
    examples = tmp_path_factory.mktemp("check-examples")
    rows = [line.split("\t") for line in sample_rows("dev.tsv", EVAL_PAIRS)]
    _write_eval_split(examples, rows)
    return examples, warmup.read_split_pairs(str(examples / "Split-eval"))


@pytest.fixture(scope="session")
def slow_check(tmp_path_factory, eval_pairs) -> Future:
    """The check of a candidate made slower on purpose against the same model unchanged as
    the served version, running in a thread from the first test on."""
    root = tmp_path_factory.mktemp("check-slow")
    served = _save_model(root / "served", _length_score)
    slower = _save_model(root / "slower", _slow_score)
    with ThreadPoolExecutor(1) as executor:
        yield executor.submit(check.check_serving, slower, str(eval_pairs[0] / "Split-eval"),
                              BF16, served, SERVED_VERSION)


@pytest.fixture(scope="module", autouse=True)
def _start_the_slow_check_first(slow_check: Future) -> None:
    """Starts `slow_check` before any other fixture (it overlaps the tiny model's export)."""


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A Model artifact's directory: a tiny random BERT under Format-Serving."""
    # pylint: disable=import-outside-toplevel
    import tensorflow_transform as tft

    from components.export.signatures import export_serving_model
    from components.families.encoders import load_encoder
    from components.model.classifier import build_classifier
    from fixtures.tiny_bert import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("check-tiny")
    checkpoint = make_tiny_checkpoint(root / "tiny-bert")
    transform_graph = _transform_graph(checkpoint, root / "transform_graph")
    export_serving_model(build_classifier(load_encoder(str(checkpoint))),
                         tft.TFTransformOutput(str(transform_graph)),
                         str(root / "model" / "Format-Serving"))
    return root / "model"


def _checked_in_process(model_dir: str, pairs: list[warmup.Pair]) -> dict:
    """The check's decision on the worker's findings, measured in this process."""
    return check.decide(check_worker.check_candidate(model_dir, None, pairs, BF16), None, None)


def _run_serving_check(tmp_path: Path, model_dir: Path, examples: Path, blessed: int
                       ) -> standard_artifacts.InfraBlessing:
    """The ServingCheck component's executor: `model_dir` both the candidate (blessed by the
    gate or not) and the served version."""
    examples_artifact = _artifact(standard_artifacts.Examples, examples)
    examples_artifact.split_names = artifact_utils.encode_split_names(["train", "eval"])
    infra_blessing = _artifact(standard_artifacts.InfraBlessing, tmp_path / "infra_blessing")
    ServingCheck.EXECUTOR_SPEC.executor_class().Do(
        {"model": [_artifact(standard_artifacts.Model, model_dir)],
         "served_model": [_artifact(standard_artifacts.Model, model_dir,
                                    **{SERVED_VERSION_KEY: SERVED_VERSION})],
         "examples": [examples_artifact],
         "model_blessing": [_artifact(standard_artifacts.ModelBlessing, tmp_path / "blessing",
                                      blessed=blessed)]},
        {"infra_blessing": [infra_blessing]}, {})
    return infra_blessing


def _recorded_result(infra_blessing: standard_artifacts.InfraBlessing) -> dict:
    result = json.loads(infra_blessing.get_string_custom_property(RESULT_KEY))
    assert json.loads((Path(infra_blessing.uri) / RESULT_FILE).read_text()) == result
    assert infra_blessing.get_int_custom_property("blessed") == int(result["passed"])
    marker = BLESSED_FILE if result["passed"] else NOT_BLESSED_FILE
    assert sorted(path.name for path in Path(infra_blessing.uri).iterdir()) == sorted(
        [RESULT_FILE, marker])
    return result


def test_the_unchanged_model_passes_against_itself(tmp_path, tiny_model, eval_pairs,
                                                   monkeypatch):
    monkeypatch.setattr("components.serving.check_component.has_bf16_cpu", lambda: BF16)
    infra_blessing = _run_serving_check(tmp_path, tiny_model, eval_pairs[0], blessed=1)
    result = _recorded_result(infra_blessing)
    assert model_utils.is_infra_validated(infra_blessing), result["why"]
    assert result["served_version"] == SERVED_VERSION and result["bf16"] is BF16
    latency, memory = result["latency_ms"], result["memory_mib"]
    ratios = [latency["candidate"][name] / latency["served"][name] for name in ("b1", "b64")]
    assert all(0.67 < ratio < 1.5 for ratio in ratios), latency
    assert 0.9 < memory["candidate"] / memory["served"] < 1.1, memory
    assert memory["served"] > 100  # the served version's own process, TensorFlow loaded
    assert re.fullmatch(
        r"loads, answers 57 warm-up requests on 3 signatures, refuses 2 bad requests as "
        rf"documented, latency [\d.]+x / [\d.]+x version {SERVED_VERSION} at batch 1 / 64, "
        r"memory [\d.]+x", result["why"]), result["why"]


def test_a_candidate_the_gate_rejected_is_not_checked(tmp_path, monkeypatch):
    def measured(*_):
        raise AssertionError("a candidate the gate did not bless was measured")

    monkeypatch.setattr(check, "measure", measured)
    monkeypatch.setattr("components.serving.check_component.has_bf16_cpu", lambda: BF16)
    infra_blessing = _run_serving_check(tmp_path, tmp_path / "model", tmp_path, blessed=0)
    assert _recorded_result(infra_blessing) == {
        "passed": False, "latency_ms": {"candidate": None, "served": None},
        "memory_mib": {"candidate": None, "served": None}, "served_version": None,
        "bf16": BF16, "why": "not checked: the gate did not bless the candidate"}
    assert not model_utils.is_infra_validated(infra_blessing)


def test_a_slower_candidate_fails_the_latency_ratio(slow_check: Future):
    result = slow_check.result()
    assert not result["passed"]
    latency = result["latency_ms"]
    ratio = latency["candidate"]["b64"] / latency["served"]["b64"]
    assert ratio > 3, latency
    assert re.search(rf"latency at batch 64 [\d.]+ ms is {ratio:.2f}x version "
                     rf"{SERVED_VERSION}'s [\d.]+ ms \(above 1\.5x\)", result["why"]), result
    assert "memory" not in result["why"]  # the same model, but for the products


def test_a_candidate_that_does_not_load_fails_with_the_loaders_error(tmp_path, eval_pairs):
    broken = Path(_save_model(tmp_path / "broken", _length_score))
    content = (broken / "saved_model.pb").read_bytes()
    (broken / "saved_model.pb").write_bytes(content[:len(content) // 2])
    with pytest.raises(Exception) as raised:  # what TF Serving's loader would log
        ServingSession(str(broken), BF16)
    result = _checked_in_process(str(broken), eval_pairs[1])
    first_line = str(raised.value).strip().splitlines()[0]
    assert result["why"] == (f"the candidate does not load: {type(raised.value).__name__}: "
                             f"{first_line}")
    assert not result["passed"] and result["latency_ms"] == {"candidate": None, "served": None}


def test_probabilities_out_of_range_fail_naming_the_signature(tmp_path, eval_pairs):
    def two(question1: tf.Tensor, _) -> tf.Tensor:
        return tf.fill(tf.shape(question1), 2.0)

    model = _save_model(tmp_path / "out_of_range", _length_score, examples_score=two)
    result = _checked_in_process(model, eval_pairs[1])
    assert not result["passed"]
    assert result["why"] == "serving_default at batch 1: probability out of [0, 1] (from 2 to 2)"


def test_a_model_answering_a_bad_request_fails(tmp_path, eval_pairs):
    model = _save_model(tmp_path / "lenient", _length_score, refuse_mismatch=False)
    result = _checked_in_process(model, eval_pairs[1])
    assert not result["passed"]
    assert result["why"] == (
        "predict_text with a bad request (expected InvalidArgument: 'question1 has 2 strings "
        "and question2 has 1') answered without an error")


def _measured(memory: float) -> dict:
    return {"bf16": False, "failure": None, "memory_mib": memory, "bad_requests": 2,
            "latency_ms": {"candidate": {"b1": 10.0, "b64": 100.0},
                           "served": {"b1": 10.0, "b64": 100.0}},
            "warmup": {"requests": 57, "signatures": ["a", "b", "c"]}}


def _passed(measured: dict) -> dict:
    """The result document of a check that passed with these measurements, but its `why`."""
    return {"passed": True, "latency_ms": measured["latency_ms"], "served_version": None,
            "memory_mib": {"candidate": measured["memory_mib"], "served": None}, "bf16": False}


def test_the_memory_ratio_fails_above_its_limit():
    served = {"bf16": False, "failure": None, "memory_mib": 1000.0}
    assert check.decide(_measured(1400.0), served, 2)["passed"]
    result = check.decide(_measured(1400.0), served, 2, max_memory_ratio=1.3)
    assert result["why"] == "peak memory 1400.0 MiB is 1.40x version 2's 1000.0 MiB (above 1.3x)"
    assert result["memory_mib"] == {"candidate": 1400.0, "served": 1000.0}
    assert not result["passed"] and check.MAX_MEMORY_RATIO == 1.5


def test_latency_is_compared_at_each_batch_size_and_only_with_a_served_version():
    measured = _measured(1000.0)
    measured["latency_ms"]["candidate"]["b1"] = 16.0
    served = {"bf16": False, "failure": None, "memory_mib": 1000.0}
    assert check.decide(measured, served, 2)["why"] == (
        "latency at batch 1 16.0 ms is 1.60x version 2's 10.0 ms (above 1.5x)")
    measured["latency_ms"]["served"] = None
    assert check.decide(measured, None, None) == {**_passed(measured), "why": (
        "loads, answers 57 warm-up requests on 3 signatures, refuses 2 bad requests as "
        "documented, latency 16.0 ms / 100.0 ms at batch 1 / 64, memory 1000 MiB; no served "
        "version to compare with")}


def test_a_worker_that_crashes_or_overruns_is_an_error_with_its_stderr(monkeypatch, eval_pairs):
    split = str(eval_pairs[0] / "Split-eval")
    monkeypatch.setattr(check, "_worker_module", lambda: "components.serving.no_such_worker")
    with pytest.raises(check.ServingCheckError,
                       match=r"(?s)exited with code 1 and printed no result.*no_such_worker"):
        check.check_serving("/nowhere", split, BF16)
    monkeypatch.undo()
    with pytest.raises(check.ServingCheckError, match="did not finish in time"):
        check.check_serving("/nowhere", split, BF16, timeout=0.5)


def test_the_pusher_pushes_nothing_the_serving_check_did_not_bless(tmp_path: Path):
    model = saved_model(tmp_path / "model" / "Format-Serving").parent
    inputs = {"model": [_artifact(standard_artifacts.Model, model)],
              "model_blessing": [_artifact(standard_artifacts.ModelBlessing, tmp_path / "mb",
                                           blessed=1, **{SERVED_VERSION_KEY: 0})]}
    destination = json.dumps({"filesystem": {"base_directory": str(tmp_path / "serving")}})
    for infra_blessed in (0, 1):
        pushed = _artifact(standard_artifacts.PushedModel, tmp_path / f"pushed-{infra_blessed}")
        infra = _artifact(standard_artifacts.InfraBlessing, tmp_path / "ib", blessed=infra_blessed)
        pusher.Executor().Do({**inputs, "infra_blessing": [infra]},
                             {"pushed_model": [pushed]}, {"push_destination": destination})
        assert pushed.get_int_custom_property("pushed") == infra_blessed
        assert versions(str(tmp_path / "serving")) == [1] * infra_blessed

