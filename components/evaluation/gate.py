"""The final blessing: both TFMA comparisons must pass, and the verdict says which did not.

TFMA gates a candidate against one baseline per EvalConfig, so the pipeline
runs two Evaluators: one against the not-fine-tuned model (with the absolute
floors), one against the served model (with the margin; `components.evaluation.served_model`). This
component combines their blessings into the one the Pusher reads, and records
the reasons in plain words (custom property `verdict`, a JSON list).
"""


import json

from tfx import v1 as tfx

from components.evaluation.blessing_keys import NO_BASELINE_KEY
from components.evaluation.blessings import is_blessed, write_blessing
from components.evaluation.per_span import per_span, worst_span
from components.features import METRIC_TITLES, SPAN_FEATURE
from components.serving.layout import SERVED_VERSION_KEY

Artifact = tfx.types.standard_artifacts
VERDICT_KEY = "verdict"


def failure_reasons(evaluation_uri: str, versus: str, span_slices: bool = False) -> list[str]:
    """One line per failed TFMA threshold of an evaluation, in plain words; those of the
    span slices only with `span_slices` (a window of one span repeats all pairs)."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    reasons = []
    validation = tfma.load_validation_result(evaluation_uri)
    for slice_failures in validation.metric_validations_per_slice:
        keys = slice_failures.slice_key.single_slice_keys
        if not span_slices and any(key.column == SPAN_FEATURE for key in keys):
            continue
        where = "".join(f" on {key.column} {key.int64_value}" for key in keys)  # on span 1
        for failure in slice_failures.failures:
            name = METRIC_TITLES.get(failure.metric_key.name, failure.metric_key.name)
            value = failure.metric_value.double_value.value
            threshold = failure.metric_threshold
            if failure.metric_key.is_diff:
                needed = threshold.change_threshold.absolute.value + 0.0  # -0.0 reads +0.0000
                reasons.append(f"{name} is {value:+.4f}{where} vs {versus} "
                               f"(needs >= {needed:+.4f})")
            else:
                reasons.append(f"{name} = {value:.4f}{where} is below the floor "
                               f"{threshold.value_threshold.lower_bound.value:.4f}")
    for missing in validation.missing_slices:  # a gated slice with no eval pairs fails too
        reasons.append(f"no eval pairs sliced by {', '.join(missing.feature_keys) or 'nothing'} "
                       f"to compare with {versus}")
    return reasons


def served_model_title(version: int) -> str:
    """How verdicts name the served model: "the served model (version 3)"."""
    return f"the served model (version {version})"


def verdict(not_fine_tuned_passed: bool, not_fine_tuned_failures: list[str],
            served_model_passed: bool | None, served_model_failures: list[str],
            served_version: int) -> list[str]:
    """Plain-language reasons for both comparisons; `served_model_passed` None: nothing served."""
    lines = (["clears the floors and beats the not-fine-tuned model on accuracy and F1"]
             if not_fine_tuned_passed else not_fine_tuned_failures)
    if served_model_passed is None:
        lines.append("no model is served yet: nothing to compare with")
    elif served_model_passed:
        lines.append(f"not worse than {served_model_title(served_version)} by more than "
                     "the margin")
    else:
        lines += served_model_failures
    return lines


def decide(not_fine_tuned_evaluation_uri: str, versus_not_fine_tuned: bool,
           served_model_evaluation_uri: str, versus_served_model: bool | None,
           served_version: int) -> tuple[bool, list[str]]:
    """Whether the candidate is blessed, and why (None: no model is served yet). With more
    than one span in the window, the reasons name the spans that regressed and the worst."""
    spans = [] if versus_served_model is None else [
        row for row in per_span(served_model_evaluation_uri, served_model_evaluation_uri)
        if row["span"]]
    reasons = verdict(
        versus_not_fine_tuned,
        [] if versus_not_fine_tuned else failure_reasons(not_fine_tuned_evaluation_uri,
                                                         "the not-fine-tuned model"),
        versus_served_model,
        [] if versus_served_model in (None, True) else failure_reasons(
            served_model_evaluation_uri, served_model_title(served_version),
            span_slices=len(spans) > 1),
        served_version)
    if len(spans) > 1:
        reasons.append(worst_span(spans))
    return versus_not_fine_tuned and versus_served_model is not False, reasons


@tfx.dsl.components.component
def BlessingGate(
        model: tfx.dsl.components.InputArtifact[Artifact.Model],
        not_fine_tuned_evaluation: tfx.dsl.components.InputArtifact[Artifact.ModelEvaluation],
        not_fine_tuned_blessing: tfx.dsl.components.InputArtifact[Artifact.ModelBlessing],
        served_model_evaluation: tfx.dsl.components.InputArtifact[Artifact.ModelEvaluation],
        served_model_blessing: tfx.dsl.components.InputArtifact[Artifact.ModelBlessing],
        blessing: tfx.dsl.components.OutputArtifact[Artifact.ModelBlessing],
) -> None:
    """Blesses the candidate only if both Evaluators blessed it."""
    nothing_served = served_model_blessing.get_int_custom_property(NO_BASELINE_KEY) == 1
    served_version = served_model_blessing.get_int_custom_property(SERVED_VERSION_KEY)
    passed, reasons = decide(
        not_fine_tuned_evaluation.uri, is_blessed(not_fine_tuned_blessing),
        served_model_evaluation.uri,
        None if nothing_served else is_blessed(served_model_blessing), served_version)
    write_blessing(blessing, model, passed)
    blessing.set_string_custom_property(VERDICT_KEY, json.dumps(reasons))
    # The Pusher checks that this is still the newest version before it pushes.
    blessing.set_int_custom_property(SERVED_VERSION_KEY, served_version)
