"""The model card: a Hugging Face style YAML header and the gate's figures, never typed by hand."""

import yaml

from components.serving.model_card import model_card

RECORD = {"version": 4, "pushed_at": "2026-12-07T10:00:00+00:00", "pushed_by": "ci@host",
          "run_id": "2026-12-07T09:00:00.1", "checkpoint": "sentence-transformers/all-MiniLM-L6-v2",
          "family": "bert", "data": {"span": 2, "fingerprint": "split:eval,num_files:1"},
          "accuracy": 0.8370, "f1": 0.7824, "rollback_of": None, "reason": None,
          "model_digest": "abc"}
FIGURES = {
    "eval_pairs": 1000, "confidence": 0.95, "margin": 0.0, "served_version": 3,
    "candidate": {"accuracy": 0.8370, "f1": 0.7824, "roc_auc": 0.9066},
    "not_fine_tuned": {"accuracy": 0.7790, "f1": 0.7148, "roc_auc": 0.8690},
    "served": {"accuracy": 0.8300, "f1": 0.7750},
    "comparisons": [
        {"versus": "not_fine_tuned", "version": None, "slice": "all pairs", "metric": "accuracy",
         "difference": 0.058, "ci_low": 0.0391, "ci_high": 0.0771, "confidence": 0.95,
         "passed": True},
        {"versus": "served", "version": 3, "slice": "span 1", "metric": "f1",
         "difference": -0.001, "ci_low": -0.012, "ci_high": 0.01, "confidence": 0.95,
         "passed": True}],
    "per_span": [{"span": 1, "candidate": {"accuracy": 0.81, "f1": 0.75},
                  "served": {"accuracy": 0.80, "f1": 0.74}}],
}


def _header(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_the_header_is_yaml_with_the_candidates_figures():
    header = _header(model_card(RECORD, FIGURES))
    assert header["base_model"] == RECORD["checkpoint"]
    assert header["pipeline_tag"] == "text-classification"
    metrics = {item["type"]: item["value"]
               for item in header["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"accuracy": 0.8370, "f1": 0.7824, "roc_auc": 0.9066}


def test_the_body_holds_the_comparisons_with_their_intervals_and_the_spans():
    card = model_card(RECORD, FIGURES)
    assert "| the not-fine-tuned model | all pairs | accuracy | +0.0580 | 95% CI +0.0391..+0.0771 " \
           "| passed |" in card
    assert "| version 3 | span 1 | F1 | -0.0010 | 95% CI -0.0120..+0.0100 | passed |" in card
    assert "| version 3 (replaced) | 0.8300 | 0.7750 |" in card
    assert "| 1 | 0.8100 | 0.7500 | 0.8000 | 0.7400 |" in card
    assert "`sentence-transformers/all-MiniLM-L6-v2` (family `bert`)" in card
    assert "span 2, fingerprint `split:eval,num_files:1`" in card
    assert "## Limitations" in card and "predict_text" in card


def test_a_version_without_figures_says_so_and_a_rollback_says_why():
    card = model_card({**RECORD, "rollback_of": 2, "reason": "F1 fell in production"}, None)
    assert "This version was pushed without the gate's figures." in card
    assert "- a rollback to version 2: F1 fell in production" in card
    assert _header(card)["model-index"][0]["results"][0]["metrics"] == []
