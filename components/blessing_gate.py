"""The final blessing: both TFMA comparisons must pass, and the verdict says which did not.

TFMA gates a candidate against one baseline per EvalConfig, so the pipeline
runs two Evaluators: one against the not-fine-tuned model (with the absolute
floors), one against the latest blessed model (with the margin). This
component combines their blessings into the one the Pusher reads, and records
the reasons in plain words (custom property `verdict`, a JSON list).
"""


import json

from tfx import v1 as tfx

from components.blessings import NO_BASELINE_KEY, is_blessed, write_blessing
from components.features import METRIC_TITLES

Artifact = tfx.types.standard_artifacts
VERDICT_KEY = "verdict"


def failure_reasons(evaluation_uri: str, versus: str) -> list[str]:
    """One line per failed TFMA threshold of an evaluation, in plain words."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    reasons = []
    validation = tfma.load_validation_result(evaluation_uri)
    for slice_failures in validation.metric_validations_per_slice:
        for failure in slice_failures.failures:
            name = METRIC_TITLES.get(failure.metric_key.name, failure.metric_key.name)
            value = failure.metric_value.double_value.value
            threshold = failure.metric_threshold
            if failure.metric_key.is_diff:
                reasons.append(f"{name} is {value:+.4f} vs {versus} "
                               f"(needs >= {threshold.change_threshold.absolute.value:+.4f})")
            else:
                reasons.append(f"{name} = {value:.4f} is below the floor "
                               f"{threshold.value_threshold.lower_bound.value:.4f}")
    return reasons


def verdict(not_fine_tuned_passed: bool, not_fine_tuned_failures: list[str],
            blessed_model_passed: bool | None, blessed_model_failures: list[str]) -> list[str]:
    """Plain-language reasons for both comparisons; `blessed_model_passed` None: no blessed model."""
    lines = (["clears the floors and beats the not-fine-tuned model on accuracy and F1"]
             if not_fine_tuned_passed else not_fine_tuned_failures)
    if blessed_model_passed is None:
        lines.append("no model was blessed before: nothing to compare with")
    elif blessed_model_passed:
        lines.append("not worse than the latest blessed model by more than the margin")
    else:
        lines += blessed_model_failures
    return lines


def decide(not_fine_tuned_evaluation_uri: str, versus_not_fine_tuned: bool,
           blessed_model_evaluation_uri: str, versus_blessed_model: bool | None
           ) -> tuple[bool, list[str]]:
    """Whether the candidate is blessed, and why (None: there is no blessed model yet)."""
    reasons = verdict(
        versus_not_fine_tuned,
        [] if versus_not_fine_tuned else failure_reasons(not_fine_tuned_evaluation_uri,
                                                         "the not-fine-tuned model"),
        versus_blessed_model,
        [] if versus_blessed_model in (None, True) else failure_reasons(
            blessed_model_evaluation_uri, "the latest blessed model"))
    return versus_not_fine_tuned and versus_blessed_model is not False, reasons


@tfx.dsl.components.component
def BlessingGate(
        model: tfx.dsl.components.InputArtifact[Artifact.Model],
        not_fine_tuned_evaluation: tfx.dsl.components.InputArtifact[Artifact.ModelEvaluation],
        not_fine_tuned_blessing: tfx.dsl.components.InputArtifact[Artifact.ModelBlessing],
        blessed_model_evaluation: tfx.dsl.components.InputArtifact[Artifact.ModelEvaluation],
        blessed_model_blessing: tfx.dsl.components.InputArtifact[Artifact.ModelBlessing],
        blessing: tfx.dsl.components.OutputArtifact[Artifact.ModelBlessing],
) -> None:
    """Blesses the candidate only if both Evaluators blessed it."""
    no_blessed_model = blessed_model_blessing.get_int_custom_property(NO_BASELINE_KEY) == 1
    passed, reasons = decide(
        not_fine_tuned_evaluation.uri, is_blessed(not_fine_tuned_blessing),
        blessed_model_evaluation.uri, None if no_blessed_model else is_blessed(
            blessed_model_blessing))
    write_blessing(blessing, model, passed)
    blessing.set_string_custom_property(VERDICT_KEY, json.dumps(reasons))
