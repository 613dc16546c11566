"""The blessing gate: the floors from TFMA, the comparisons on paired intervals, the verdict.

The comparisons run on synthetic decisions (labels and each model's 0/1 calls); one
TFMA run on synthetic probabilities checks the floors with the pipeline's own
EvalConfig (model specs pointed at the probabilities instead of SavedModels).
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.evaluation.comparisons import versus_not_fine_tuned, versus_served
from components.evaluation.eval_configs import not_fine_tuned_eval_config
from components.evaluation.gate import floor_failures, verdict
from components.evaluation.per_span import worst_span
from components.features import LABEL, SLICE_FEATURE, SPAN_FEATURE

LABELS = np.array([1] * 40 + [0] * 60)
ONE_SPAN = np.ones(100, dtype=int)
# Two spans: the first 20 duplicates and 30 others are span 1, the rest span 2.
TWO_SPANS = np.where((np.arange(100) < 20) | ((np.arange(100) >= 40) & (np.arange(100) < 70)),
                     1, 2)


def _calls(misses: int, false_alarms: int) -> np.ndarray:
    """Decisions that miss the first `misses` duplicates and call `false_alarms` others."""
    predicted = LABELS.copy()
    predicted[:misses] = 0
    predicted[40:40 + false_alarms] = 1
    return predicted


def _gate(candidate, not_fine_tuned, served, margin: float = 0.0, spans=ONE_SPAN,
          served_version: int = 3, floors: list[str] | None = None):
    comparisons = versus_not_fine_tuned(LABELS, candidate, not_fine_tuned)
    if served is not None:
        comparisons += versus_served(LABELS, spans, candidate, served, served_version, margin)
    return verdict(floors or [], comparisons, served_version if served is not None else 0,
                   margin)


def test_better_than_both_is_blessed_and_the_intervals_are_printed():
    blessed, reasons = _gate(_calls(5, 5), _calls(20, 20), _calls(8, 7))
    assert blessed, reasons
    assert reasons[:2] == ["clears the floors and beats the not-fine-tuned model on accuracy "
                           "and F1",
                           "not worse than the served model (version 3) by more than the margin"]
    assert reasons[2].startswith("accuracy +0.3000 (95% CI +0.2"), reasons
    assert reasons[4].startswith("accuracy +0.0500 (95% CI +0.0"), reasons
    assert reasons[4].endswith(") vs version 3"), reasons


def test_the_same_model_as_the_served_one_is_blessed_and_its_interval_holds_zero():
    same = _calls(8, 7)
    blessed, reasons = _gate(same, _calls(20, 20), same.copy())
    assert blessed, reasons
    assert "accuracy +0.0000 (95% CI +0.0000..+0.0000) vs version 3" in reasons
    assert "F1 +0.0000 (95% CI +0.0000..+0.0000) vs version 3" in reasons


def test_one_pair_worse_than_the_served_model_is_noise_and_passes():
    served = _calls(8, 7)
    candidate = served.copy()
    candidate[50] = 1  # one more false alarm
    blessed, reasons = _gate(candidate, _calls(20, 20), served)
    assert blessed, reasons
    line = next(reason for reason in reasons if reason.startswith("accuracy -0.0100"))
    low, high = (float(value) for value in line.split("CI ")[1].split(")")[0].split(".."))
    assert low < 0 <= high, line


def test_clearly_worse_than_the_served_model_is_rejected_with_its_interval():
    blessed, reasons = _gate(_calls(15, 15), _calls(30, 30), _calls(5, 5))
    assert not blessed
    assert reasons[0].startswith("clears the floors and beats the not-fine-tuned model")
    failed = [reason for reason in reasons if "worse by more than the margin" in reason]
    assert [reason.split(" (95%")[0] for reason in failed] == ["accuracy -0.2000", "F1 -0.2500"]
    assert all(" vs the served model (version 3): worse by more than the margin (0.0000) with "
               "95% confidence" in reason for reason in failed), failed


@pytest.mark.parametrize("margin, expected", [(0.0, False), (0.2, True)])
def test_the_margin_allows_a_regression(margin: float, expected: bool):
    blessed, reasons = _gate(_calls(10, 10), _calls(30, 30), _calls(5, 5), margin=margin)
    assert blessed == expected, reasons


def test_not_clearly_better_than_the_not_fine_tuned_model_is_not_enough():
    blessed, reasons = _gate(_calls(8, 7), _calls(8, 8), None)
    assert not blessed
    assert any(reason.startswith("accuracy +0.0100 (95% CI ")
               and reason.endswith("vs the not-fine-tuned model: not better with 95% confidence")
               for reason in reasons), reasons
    assert "no model is served yet: nothing to compare with" in reasons


def test_better_accuracy_but_worse_f1_than_the_not_fine_tuned_model():
    candidate = (np.arange(100) < 15).astype(int)  # 15 of 40 duplicates found
    not_fine_tuned = ((np.arange(100) < 38) | (np.arange(100) >= 70)).astype(int)
    blessed, reasons = _gate(candidate, not_fine_tuned, None)
    assert not blessed
    assert any(reason.startswith("F1 -") and "not better" in reason for reason in reasons)


def test_nothing_served_yet_the_not_fine_tuned_comparison_decides_alone():
    blessed, reasons = _gate(_calls(5, 5), _calls(20, 20), None)
    assert blessed, reasons
    assert "no model is served yet: nothing to compare with" in reasons
    assert not any("version" in reason for reason in reasons), reasons


def test_a_missed_floor_rejects_and_is_named():
    floors = ["F1 = 0.2000 is below the floor 0.3000"]
    blessed, reasons = _gate(_calls(5, 5), _calls(20, 20), None, floors=floors)
    assert not blessed and reasons[0] == floors[0], reasons


def test_a_model_that_forgot_one_span_is_not_blessed_and_the_span_is_named():
    """As good as the served model on span 2, worse on span 1: the verdict names span 1."""
    served = _calls(10, 10)
    candidate = served.copy()
    candidate[:20] = 0  # every duplicate of span 1 missed
    blessed, reasons = _gate(candidate, _calls(40, 30), served, spans=TWO_SPANS)
    assert not blessed
    assert any(reason.startswith("accuracy on span 1 -0.2000 (95% CI ") and " vs the served "
               "model (version 3): worse" in reason for reason in reasons), reasons
    assert not any("on span 2 " in reason for reason in reasons), reasons


def test_a_window_of_one_span_is_compared_on_all_pairs_only():
    comparisons = versus_served(LABELS, ONE_SPAN, _calls(8, 7), _calls(5, 5), 3, 0.0)
    assert {comparison.slice for comparison in comparisons} == {"all pairs"}
    two = versus_served(LABELS, TWO_SPANS, _calls(8, 7), _calls(5, 5), 3, 0.0)
    assert {comparison.slice for comparison in two} == {"all pairs", "span 1", "span 2"}


def test_the_worst_span_is_named_from_the_served_evaluation():
    rows = [{"span": 1, "candidate": {"accuracy": 0.6, "f1": 0.2},
             "served": {"accuracy": 0.8, "f1": 0.7}},
            {"span": 2, "candidate": {"accuracy": 0.8, "f1": 0.7},
             "served": {"accuracy": 0.8, "f1": 0.7}}]
    assert worst_span(rows) == "worst span: 1 (accuracy -0.2000, F1 -0.5000)"


def test_the_comparisons_json_holds_the_interval_next_to_the_difference():
    comparison = versus_served(LABELS, ONE_SPAN, _calls(8, 7), _calls(5, 5), 3, 0.0)[0]
    document = comparison.to_json()
    assert document["difference"] == pytest.approx(-0.05)
    assert document["ci_low"] <= document["difference"] <= document["ci_high"]
    assert {"versus": "served", "version": 3, "slice": "all pairs", "metric": "accuracy",
            "passed": False}.items() <= document.items()


def test_the_floors_come_from_tfma_with_the_pipelines_eval_config(tmp_path: Path, monkeypatch):
    """One TFMA run: the candidate clears the accuracy floor, not the F1 one."""
    from tensorflow_model_analysis.api import model_eval_lib
    from tensorflow_model_analysis.utils import config_util

    # TFMA infers "has a baseline" from the number of SavedModels; here there are none.
    monkeypatch.setattr(model_eval_lib, "_update_eval_config_with_defaults",
                        lambda eval_config, _: config_util.update_eval_config_with_defaults(
                            eval_config, has_baseline=True))
    candidate = np.where(np.arange(100) < 15, 0.9, 0.1)  # accuracy 0.75, F1 0.5455
    data = tmp_path / "data.tfrecord"
    with tf.io.TFRecordWriter(str(data)) as writer:
        for label, probability in zip(LABELS, candidate):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                SLICE_FEATURE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a"])),
                LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                SPAN_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
                "p": tf.train.Feature(float_list=tf.train.FloatList(value=[probability])),
            })).SerializeToString())
    config = not_fine_tuned_eval_config(0.7, 0.6)
    for spec in config.model_specs:  # read predictions from the examples, not a SavedModel
        spec.ClearField("signature_name")
        spec.ClearField("preprocessing_function_names")
        spec.prediction_key = "p"
    tfma.run_model_analysis(eval_config=config, data_location=str(data),
                            output_path=str(tmp_path / "evaluation"))
    assert not tfma.load_validation_result(str(tmp_path / "evaluation")).validation_ok
    assert floor_failures(str(tmp_path / "evaluation")) == [
        "F1 = 0.5455 is below the floor 0.6000"]
