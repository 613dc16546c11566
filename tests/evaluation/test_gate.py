"""The blessing gate on synthetic predictions: TFMA with the pipeline's own thresholds.

Each case writes labels and two models' probabilities as tf.Examples, runs TFMA
with the pipeline's EvalConfig (model specs pointed at those probabilities
instead of SavedModels), then lets the BlessingGate decide.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.evaluation.eval_configs import not_fine_tuned_eval_config, served_model_eval_config
from components.evaluation.gate import decide, failure_reasons
from components.features import LABEL, SLICE_FEATURE, SPAN_FEATURE

LABELS = np.array([1] * 40 + [0] * 60)
# Two slices of 50 pairs, each with 20 duplicates.
# One span, as in a window of one (the span slice is then all pairs, and not gated twice).
SPANS = np.ones(100, dtype=int)
# Two spans: the first 20 duplicates and 30 others are span 1, the rest span 2.
TWO_SPANS = np.where((np.arange(100) < 20) | ((np.arange(100) >= 40) & (np.arange(100) < 70)),
                     1, 2)
SLICES = np.where((np.arange(100) < 20) | ((np.arange(100) >= 40) & (np.arange(100) < 70)),
                  "0.00-0.25", "0.75-1.00")


def _predictions(misses: int, false_alarms: int) -> np.ndarray:
    """Probabilities that miss the first `misses` duplicates and call `false_alarms` others."""
    predicted = LABELS.copy()
    predicted[:misses] = 0
    predicted[40:40 + false_alarms] = 1
    return np.where(predicted == 1, 0.9, 0.1)


@pytest.fixture(autouse=True)
def _predictions_from_examples(monkeypatch):
    """TFMA infers "has a baseline" from the number of SavedModels; here there are none."""
    from tensorflow_model_analysis.api import model_eval_lib
    from tensorflow_model_analysis.utils import config_util

    monkeypatch.setattr(model_eval_lib, "_update_eval_config_with_defaults",
                        lambda eval_config, _: config_util.update_eval_config_with_defaults(
                            eval_config, has_baseline=True))


# TFMA runs already made in this module, by their inputs: several cases share a comparison.
_EVALUATIONS: dict[bytes, tuple[str, bool]] = {}


def _evaluate(tmp_path: Path, name: str, config: tfma.EvalConfig, candidate: np.ndarray,
              baseline: np.ndarray, spans: np.ndarray | None = SPANS) -> tuple[str, bool]:
    key = b"|".join([config.SerializeToString(deterministic=True), candidate.tobytes(),
                     baseline.tobytes(), b"-" if spans is None else spans.tobytes()])
    if key not in _EVALUATIONS:
        _EVALUATIONS[key] = _run_tfma(tmp_path, name, config, candidate, baseline, spans)
    return _EVALUATIONS[key]


def _run_tfma(tmp_path: Path, name: str, config: tfma.EvalConfig, candidate: np.ndarray,
              baseline: np.ndarray, spans: np.ndarray | None) -> tuple[str, bool]:
    data = tmp_path / f"{name}.tfrecord"
    with tf.io.TFRecordWriter(str(data)) as writer:
        for index, (label, ours, theirs, group) in enumerate(
                zip(LABELS, candidate, baseline, SLICES)):
            span = [] if spans is None else [int(spans[index])]
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                SLICE_FEATURE: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[group.encode()])),
                LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                SPAN_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(value=span)),
                "p_candidate": tf.train.Feature(float_list=tf.train.FloatList(value=[ours])),
                "p_baseline": tf.train.Feature(float_list=tf.train.FloatList(value=[theirs])),
            })).SerializeToString())
    for spec in config.model_specs:  # read predictions from the examples, not a SavedModel
        spec.ClearField("signature_name")
        spec.ClearField("preprocessing_function_names")
        spec.prediction_key = "p_baseline" if spec.is_baseline else "p_candidate"
    output = tmp_path / name
    tfma.run_model_analysis(eval_config=config, data_location=str(data),
                            output_path=str(output))
    return str(output), tfma.load_validation_result(str(output)).validation_ok


def _gate(tmp_path: Path, candidate, not_fine_tuned, served, margin: float = 0.0,
          spans: np.ndarray | None = SPANS):
    nft_uri, nft_ok = _evaluate(tmp_path, "nft", not_fine_tuned_eval_config(0.5, 0.3),
                                candidate, not_fine_tuned, spans)
    served_uri, served_ok = _evaluate(tmp_path, "served", served_model_eval_config(margin),
                                      candidate, served, spans)
    return decide(nft_uri, nft_ok, served_uri, served_ok, served_version=3)


def test_better_than_both_is_blessed(tmp_path: Path):
    blessed, reasons = _gate(tmp_path, _predictions(5, 5), _predictions(10, 10),
                             _predictions(8, 7))
    assert blessed, reasons
    assert reasons == ["clears the floors and beats the not-fine-tuned model on accuracy and F1",
                       "not worse than the served model (version 3) by more than the margin"]


def test_beating_the_served_model_but_not_the_not_fine_tuned_one_is_not_enough(tmp_path):
    blessed, reasons = _gate(tmp_path, _predictions(8, 7), _predictions(5, 5),
                             _predictions(10, 10))
    assert not blessed
    assert any(reason.startswith("accuracy is -0.0500 vs the not-fine-tuned model")
               for reason in reasons), reasons
    assert "not worse than the served model (version 3) by more than the margin" in reasons


def test_beating_the_not_fine_tuned_model_but_falling_behind_the_served_one(tmp_path):
    blessed, reasons = _gate(tmp_path, _predictions(8, 7), _predictions(10, 10),
                             _predictions(5, 5))
    assert not blessed
    assert reasons[0].startswith("clears the floors and beats the not-fine-tuned model")
    assert any(reason.startswith("accuracy is -0.0500 vs the served model (version 3)")
               for reason in reasons), reasons


def test_better_accuracy_but_worse_f1_than_the_not_fine_tuned_model(tmp_path: Path):
    # The candidate calls almost nothing a duplicate: right more often, F1 much lower.
    candidate = np.where(np.arange(100) < 15, 0.9, 0.1)  # 15 of 40 duplicates found
    not_fine_tuned = np.where((np.arange(100) < 38) | (np.arange(100) >= 70), 0.9, 0.1)
    blessed, reasons = _gate(tmp_path, candidate, not_fine_tuned, candidate)
    assert not blessed
    assert any(reason.startswith("F1 is -") and "not-fine-tuned" in reason for reason in reasons)
    assert not any(reason.startswith("accuracy is") for reason in reasons), reasons


def test_better_accuracy_but_worse_f1_than_the_served_model(tmp_path: Path):
    candidate = np.where(np.arange(100) < 15, 0.9, 0.1)  # accuracy 0.75, F1 0.55
    served = np.where((np.arange(100) < 38) | (np.arange(100) >= 70), 0.9, 0.1)  # 0.68, 0.70
    not_fine_tuned = _predictions(40, 0)  # calls nothing a duplicate: accuracy 0.60, F1 0
    blessed, reasons = _gate(tmp_path, candidate, not_fine_tuned, served)
    assert not blessed
    assert reasons[0].startswith("clears the floors and beats the not-fine-tuned model")
    assert [reason.split(" (needs")[0] for reason in reasons[1:]] == [
        "F1 is -0.1582 vs the served model (version 3)"], reasons


@pytest.mark.parametrize("margin, expected", [(0.0, False), (0.1, True)])
def test_margin_allows_a_small_regression(tmp_path: Path, margin: float, expected: bool):
    blessed, reasons = _gate(tmp_path, _predictions(8, 7), _predictions(10, 10),
                             _predictions(5, 5), margin=margin)
    assert blessed == expected, reasons


@pytest.mark.parametrize("versus_not_fine_tuned", [True, False])
def test_nothing_served_yet(tmp_path: Path, versus_not_fine_tuned: bool):
    candidate, not_fine_tuned = _predictions(5, 5), _predictions(10, 10)
    if not versus_not_fine_tuned:
        candidate, not_fine_tuned = not_fine_tuned, candidate
    nft_uri, nft_ok = _evaluate(tmp_path, "nft", not_fine_tuned_eval_config(0.5, 0.3),
                                candidate, not_fine_tuned)
    assert nft_ok == versus_not_fine_tuned
    blessed, reasons = decide(nft_uri, nft_ok, str(tmp_path / "no-evaluation"), None,
                              served_version=0)
    # With nothing served, the comparison with the not-fine-tuned model decides alone.
    assert blessed == versus_not_fine_tuned, reasons
    assert reasons[-1] == "no model is served yet: nothing to compare with"


def test_only_all_pairs_are_gated_not_each_slice(tmp_path: Path):
    candidate = np.where(np.arange(100) < 40, 0.9, 0.1)
    candidate[:5] = 0.1  # five misses, all in the first slice
    not_fine_tuned = np.where(np.arange(100) < 40, 0.9, 0.1)
    not_fine_tuned[20:30] = 0.1  # ten misses and ten false alarms, all in the other slice
    not_fine_tuned[70:80] = 0.9
    blessed, reasons = _gate(tmp_path, candidate, not_fine_tuned, candidate)
    assert blessed, reasons  # although worse than the not-fine-tuned model in one slice


def test_a_model_that_forgot_one_span_is_not_blessed_and_the_span_is_named(tmp_path: Path):
    """As good as the served model on span 2, worse on span 1: the verdict names span 1."""
    served = _predictions(10, 10)
    candidate = served.copy()
    candidate[:20] = 0.1  # every duplicate of span 1 missed
    blessed, reasons = _gate(tmp_path, candidate, _predictions(40, 0), served, spans=TWO_SPANS)
    assert not blessed
    assert "accuracy is -0.2000 on span 1 vs the served model (version 3)" in [
        reason.split(" (needs")[0] for reason in reasons], reasons
    assert not any(" on span 2 " in reason for reason in reasons), reasons
    assert reasons[-1] == "worst span: 1 (accuracy -0.2000, F1 -0.5000)", reasons


def test_a_window_of_one_span_is_gated_on_all_pairs_only(tmp_path: Path):
    blessed, reasons = _gate(tmp_path, _predictions(8, 7), _predictions(10, 10),
                             _predictions(5, 5))
    assert not blessed
    assert not any(" on span " in reason or "worst span" in reason for reason in reasons)


def test_eval_pairs_without_a_span_fail_the_gate_with_a_reason(tmp_path: Path):
    uri, passed = _evaluate(tmp_path, "served", served_model_eval_config(0.0),
                            _predictions(5, 5), _predictions(8, 7), spans=None)
    assert not passed
    assert failure_reasons(uri, "the served model") == [
        "no eval pairs sliced by span to compare with the served model"]
