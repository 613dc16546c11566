"""The final blessing: the floors, and every comparison decided on its paired interval.

The pipeline runs two TFMA Evaluators: one with the not-fine-tuned model as baseline
and the absolute floors, one with the served model (`components.evaluation.served_model`),
each measuring both models on the eval pairs. The floors are TFMA's thresholds. The
comparisons are decided here, on the same eval pairs scored once more by all three
models (`components.evaluation.paired_scores`), each with a paired 95% interval of
its difference (`components.evaluation.comparisons`): a difference that is noise
neither rejects nor blesses a candidate by itself. The gate writes the blessing the
Pusher reads, the reasons in plain words (custom property `verdict`, a JSON list)
and the figures (`components.evaluation.figures`).
"""


import json
import os

from tfx import v1 as tfx

from components.evaluation.blessing_keys import NO_BASELINE_KEY
from components.evaluation.blessings import is_blessed, write_blessing
from components.evaluation.comparisons import (ALL_PAIRS, Comparison, describe, failure_line,
                                               served_model_title, versus_not_fine_tuned,
                                               versus_served)
from components.evaluation.figures import gate_figures, write_figures
from components.evaluation.paired_scores import EvalPairs, predicted_labels, read_eval_pairs
from components.evaluation.per_span import per_span, worst_span
from components.evaluation.served_model import SERVING_SUBDIR
from components.features import METRIC_TITLES, NOT_FINE_TUNED, SERVED
from components.precision.scoring import default_precision, scoring_precision
from components.serving.layout import SERVED_VERSION_KEY

Artifact = tfx.types.standard_artifacts
VERDICT_KEY = "verdict"


def floor_failures(evaluation_uri: str) -> list[str]:
    """One line per floor (TFMA value threshold) the candidate missed, in plain words."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    reasons = []
    for slice_failures in tfma.load_validation_result(evaluation_uri).metric_validations_per_slice:
        for failed in slice_failures.failures:
            name = METRIC_TITLES.get(failed.metric_key.name, failed.metric_key.name)
            floor = failed.metric_threshold.value_threshold.lower_bound.value
            reasons.append(f"{name} = {failed.metric_value.double_value.value:.4f} is below "
                           f"the floor {floor:.4f}")
    return reasons


def verdict(floor_failures: list[str], comparisons: list[Comparison], served_version: int,
            margin: float, worst: str | None = None) -> tuple[bool, list[str]]:
    """Whether the candidate is blessed, and why: the floors, each comparison that failed,
    the worst span, then the interval of every comparison on all pairs
    (`served_version` 0: nothing served, no comparison with it)."""
    versus_nft = [c for c in comparisons if c.versus == NOT_FINE_TUNED]
    versus_served = [c for c in comparisons if c.versus == SERVED]
    lines = []
    if not floor_failures and all(c.passed for c in versus_nft):
        lines.append("clears the floors and beats the not-fine-tuned model on accuracy and F1")
    else:
        lines += floor_failures + [failure_line(c, margin) for c in versus_nft if not c.passed]
    if not served_version:
        lines.append("no model is served yet: nothing to compare with")
    elif all(c.passed for c in versus_served):
        lines.append(f"not worse than {served_model_title(served_version)} by more than "
                     "the margin")
    else:
        lines += [failure_line(c, margin) for c in versus_served if not c.passed]
    if worst:
        lines.append(worst)
    lines += [describe(c) for c in comparisons if c.slice == ALL_PAIRS and c.passed]
    return not floor_failures and all(c.passed for c in comparisons), lines


def compare_models(pairs: EvalPairs, candidate_dir: str, not_fine_tuned_dir: str,
                   served_dir: str | None, served_version: int,
                   margin: float) -> list[Comparison]:
    """Every comparison of the candidate on the eval pairs (`served_dir` None: nothing served)."""
    with scoring_precision(default_precision()):
        candidate = predicted_labels(candidate_dir, pairs.examples)
        comparisons = versus_not_fine_tuned(
            pairs.labels, candidate, predicted_labels(not_fine_tuned_dir, pairs.examples))
        if served_dir:
            comparisons += versus_served(pairs.labels, pairs.spans, candidate,
                                         predicted_labels(served_dir, pairs.examples),
                                         served_version, margin)
    return comparisons


@tfx.dsl.components.component
def BlessingGate(
        model: tfx.dsl.components.InputArtifact[Artifact.Model],
        not_fine_tuned_model: tfx.dsl.components.InputArtifact[Artifact.Model],
        served_model: tfx.dsl.components.InputArtifact[Artifact.Model],
        examples: tfx.dsl.components.InputArtifact[Artifact.Examples],
        not_fine_tuned_evaluation: tfx.dsl.components.InputArtifact[Artifact.ModelEvaluation],
        not_fine_tuned_blessing: tfx.dsl.components.InputArtifact[Artifact.ModelBlessing],
        served_model_evaluation: tfx.dsl.components.InputArtifact[Artifact.ModelEvaluation],
        served_model_blessing: tfx.dsl.components.InputArtifact[Artifact.ModelBlessing],
        blessing: tfx.dsl.components.OutputArtifact[Artifact.ModelBlessing],
        baseline_margin: tfx.dsl.components.Parameter[float] = 0.0,
) -> None:
    """Blesses the candidate only if it clears the floors and passes every comparison."""
    nothing_served = served_model_blessing.get_int_custom_property(NO_BASELINE_KEY) == 1
    served_version = 0 if nothing_served else served_model_blessing.get_int_custom_property(
        SERVED_VERSION_KEY)
    pairs = read_eval_pairs(examples.uri)
    comparisons = compare_models(
        pairs, os.path.join(model.uri, SERVING_SUBDIR),
        os.path.join(not_fine_tuned_model.uri, SERVING_SUBDIR),
        os.path.join(served_model.uri, SERVING_SUBDIR) if served_version else None,
        served_version, baseline_margin)
    spans = [] if not served_version else [
        row for row in per_span(served_model_evaluation.uri, served_model_evaluation.uri)
        if row["span"]]
    floors = ([] if is_blessed(not_fine_tuned_blessing)
              else floor_failures(not_fine_tuned_evaluation.uri))
    passed, reasons = verdict(floors, comparisons, served_version, baseline_margin,
                              worst_span(spans) if len(spans) > 1 else None)
    write_blessing(blessing, model, passed)
    blessing.set_string_custom_property(VERDICT_KEY, json.dumps(reasons))
    write_figures(blessing, gate_figures(
        not_fine_tuned_evaluation.uri, served_model_evaluation.uri if served_version else None,
        comparisons, len(pairs.labels), baseline_margin, served_version, spans))
    # The Pusher checks that this is still the newest version before it pushes.
    blessing.set_int_custom_property(SERVED_VERSION_KEY, served_version)
