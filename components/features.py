"""Feature names and constants shared by the components and the pipeline.

One home for the names every stage agrees on (the TFX penguin template's
`features.py`). It imports nothing heavy, so the CLI can use it cheaply.
"""

from __future__ import annotations

LABEL = "is_duplicate"
QUESTIONS = ("question1", "question2")
# Transform's outputs for the pair, [CLS] question1 [SEP] question2 [SEP]: the fine-tuned model.
PAIR_FEATURES = ("input_ids", "attention_mask", "token_type_ids")
# Transform's outputs for each question alone, [CLS] question [SEP]: the not-fine-tuned model.
QUESTION_FEATURES = tuple(f"{question}_{name}" for question in QUESTIONS
                          for name in ("input_ids", "attention_mask"))
# The span (week, batch) of new data a pair arrived in; 0 for data not laid out in spans.
SPAN_FEATURE = "span"
# Evaluation slice: how many words the two questions share (Jaccard of word sets).
SLICE_FEATURE = "word_overlap"
OVERLAP_BUCKETS = ("0.00-0.25", "0.25-0.50", "0.50-0.75", "0.75-1.00")
# A pair is called a duplicate when its probability is at least this.
DECISION_THRESHOLD = 0.5

# Model names in the TFMA evaluations, which are also their roles in reports.
CANDIDATE = "candidate"  # the fine-tuned model of this run
NOT_FINE_TUNED = "not_fine_tuned"  # the pretrained encoder as it is (cosine of embeddings)
SERVED = "served"  # the newest version in the serving directory when the run gates
# Gated metrics: TFMA metric class -> the metric name it reports -> the name people read.
GATED_METRICS = {"BinaryAccuracy": "binary_accuracy", "F1Score": "f1_score"}
METRIC_TITLES = {"binary_accuracy": "accuracy", "f1_score": "F1", "precision": "precision",
                 "recall": "recall", "auc": "ROC AUC", "auc_precision_recall": "PR AUC"}
