"""Drift of QQP text between two spans, as TFDV's Jensen-Shannon divergence of derived features.

TFDV's comparators see strings as categories, useless for free text. So `pair_features`
derives numbers from each (question1, question2, is_duplicate) triple with the
checkpoint's own tokenizer (the Hugging Face fast tokenizer of the checkpoint directory),
and `compare` has TFDV compute their statistics and the divergence of the current span
from the previous one: `tfdv.validate_statistics(current, schema,
previous_statistics=previous)` with a `drift_comparator { jensen_shannon_divergence }` per
feature. TFDV reports the divergence of every compared feature in the Anomalies'
`drift_skew_info` (below its threshold too; only the ones above get an `anomaly_info`), so
every number here is TFDV's own.

How TFDV compares: the integer features (token counts and the 0/1 ones) are declared
categorical (`int_domain.is_categorical`), so TFDV counts each value and the divergence is
the exact one of the two value shares. The two rates in [0, 1] (unknown_token_rate,
word_overlap) are compared by their QUANTILES histograms. TFDV aligns two histograms by
assuming values spread evenly inside each bucket, which the histograms' outer buckets
break: they reach to the sample's min and max, so one very long question stretches the
last bucket over empty range (token counts by QUANTILES histogram: 0.05 between two
12,000-pair resamples, 0.11 between 300-pair ones); the STANDARD histogram's equal-width
buckets span min..max too, and a sample whose values are all 0 becomes a point bucket the
other sample's [0, x) bucket never meets (unknown_token_rate: up to 1.0 between
resamples). Measured with benchmarks/drift_thresholds.py (--numeric-tokens,
--source STANDARD); its default run gives the table at DEFAULT_THRESHOLDS.

Words are the whitespace-separated tokens of the lower-cased text with punctuation
(every character that is neither a word character nor whitespace) removed.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Mapping

import numpy as np

FEATURES: tuple[str, ...] = ("tokens_per_question", "truncation_rate", "unknown_token_rate",
                             "word_overlap", "duplicate_share", "empty_or_one_word")
# Features with one value per question (question1 and question2 of pair i at 2i and 2i+1);
# the others have one value per pair.
PER_QUESTION = frozenset({"tokens_per_question", "unknown_token_rate", "empty_or_one_word"})
# Integer features: TFDV compares them as categories (exact value shares, no histogram).
CATEGORICAL = frozenset({"tokens_per_question", "truncation_rate", "duplicate_share",
                         "empty_or_one_word"})
FLOAT_FEATURES = frozenset({"unknown_token_rate", "word_overlap"})

# JSD per feature, all-MiniLM-L6-v2 at max_seq_length 128 on QQP's train.tsv (57,488 pairs):
#   python benchmarks/drift_thresholds.py --tsv /work/shared/data/qqp/train.tsv --seeds 100
# (a) two disjoint 12,000-pair samples; (b) max over 100 seeds of two 300-pair samples;
# shifts of the current sample at 12,000 / 300 pairs: append = every question2 + the same
# 13-word sentence, x3 = every question repeated 3 times, dups = duplicates only,
# unk = every question2 + a character the vocabulary lacks.
#   feature                 (a)  (b) max       append           x3         dups          unk
#   tokens_per_question  0.0012   0.0586  .158 / .199  .807 / .828  .019 / .033  .004 / .032
#   truncation_rate      0.0000   0.0033     0 / 0     .057 / .070     0 / 0        0 / 0
#   unknown_token_rate   0.0001   0.0025  .000 / .001  .000 / .001  .000 / .001  .310 / .305
#   word_overlap         0.0017   0.0417  .162 / .208  .002 / .009  .083 / .070  .002 / .009
#   duplicate_share      0.0001   0.0094  .000 / .001  .000 / .001  .413 / .387  .000 / .001
#   empty_or_one_word    0.0000   0.0008     0 / 0        0 / 0        0 / 0        0 / 0
# Each threshold sits between the resamples' noise ((b) max, 1.7x or more below) and the
# shift the feature is there to catch (1.6x or more above, at both sizes): tokens 0.1 for
# append and x3, word_overlap 0.07 for append (dups at 12,000 too), duplicate_share for
# dups, unknown_token_rate for unk; truncation 0.02 also flags x3. For a 0/1 feature 0.02
# is a share moving from 0.37 to about 0.53 or 0.22, or from 0.01 to about 0.07.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "tokens_per_question": 0.1,
    "truncation_rate": 0.02,
    "unknown_token_rate": 0.02,
    "word_overlap": 0.07,
    "duplicate_share": 0.02,
    "empty_or_one_word": 0.02,
}

HISTOGRAM_SOURCE = "QUANTILES"  # which of TFDV's numeric histograms the JSD compares
HISTOGRAM_BUCKETS = 10
# Values counted per categorical feature (TFDV's default 1,000 could cut off the longest
# questions' token counts, and the divergence would miss them).
CATEGORY_VALUES = 10_000
TOKENIZE_BATCH = 4096
_PUNCTUATION = re.compile(r"[^\w\s]")


@dataclasses.dataclass(frozen=True)
class FeatureDrift:
    """TFDV's Jensen-Shannon divergence of one feature and the threshold it is held to."""

    divergence: float
    threshold: float

    @property
    def drifted(self) -> bool:
        """Whether the divergence is above the threshold."""
        return self.divergence > self.threshold


def words(text: str) -> list[str]:
    """The words of a text: lower-cased, punctuation removed, split on whitespace."""
    return _PUNCTUATION.sub("", text.lower()).split()


def jaccard(first: set[str], second: set[str]) -> float:
    """|A & B| / |A | B|; 0.0 when both sets are empty."""
    union = len(first | second)
    return len(first & second) / union if union else 0.0


def _load_tokenizer(checkpoint_dir: str):
    """The checkpoint's Hugging Face fast tokenizer."""
    from transformers import AutoTokenizer  # pylint: disable=import-outside-toplevel

    return AutoTokenizer.from_pretrained(str(checkpoint_dir), use_fast=True)


def _token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """The token ids of each text, without special tokens or truncation, in batches."""
    ids: list[list[int]] = []
    for start in range(0, len(texts), TOKENIZE_BATCH):
        batch = texts[start:start + TOKENIZE_BATCH]
        ids.extend(tokenizer(batch, add_special_tokens=False, truncation=False,
                             verbose=False)["input_ids"])
    return ids


def pair_features(pairs: Iterable[tuple[str, str, int]], checkpoint_dir: str,
                  max_seq_length: int) -> dict[str, np.ndarray]:
    """The derived features (FEATURES) of (question1, question2, is_duplicate) triples.

    Per question (2 values per pair: question1 then question2 of each pair, pair i at 2i
    and 2i+1): tokens_per_question (the checkpoint tokenizer's tokens, no special tokens),
    unknown_token_rate (share of those tokens that are the tokenizer's unknown token; 0.0
    for no tokens) and empty_or_one_word (1 if at most one word, see `words`). Per pair:
    truncation_rate (1 if the pair's encoded length, both questions' tokens plus the
    family's pair special tokens, exceeds max_seq_length), word_overlap (Jaccard overlap of
    the two questions' word sets, see `jaccard`) and duplicate_share (the label).
    Tokenizes all questions in batches with the fast tokenizer.
    """
    pairs = list(pairs)
    tokenizer = _load_tokenizer(checkpoint_dir)
    questions = [question for first, second, _ in pairs for question in (first, second)]
    ids = _token_ids(tokenizer, questions)
    tokens = np.array([len(row) for row in ids], dtype=np.int64)
    unknown_id = tokenizer.unk_token_id
    unknown = np.array([row.count(unknown_id) if unknown_id is not None else 0 for row in ids],
                       dtype=np.float64)
    pair_length = tokens[0::2] + tokens[1::2] + tokenizer.num_special_tokens_to_add(pair=True)
    question_words = [words(question) for question in questions]
    overlap = [jaccard(set(first), set(second))
               for first, second in zip(question_words[0::2], question_words[1::2])]
    return {
        "tokens_per_question": tokens,
        "truncation_rate": (pair_length > max_seq_length).astype(np.int64),
        "unknown_token_rate": np.divide(unknown, tokens, out=np.zeros_like(unknown),
                                        where=tokens > 0),
        "word_overlap": np.array(overlap, dtype=np.float64),
        "duplicate_share": np.array([int(label) for _, _, label in pairs], dtype=np.int64),
        "empty_or_one_word": np.array([len(found) <= 1 for found in question_words],
                                      dtype=np.int64),
    }


def drift_schema(thresholds: Mapping[str, float]):
    """A TFDV schema of FEATURES, each with a Jensen-Shannon drift comparator.

    A feature missing from `thresholds` keeps its DEFAULT_THRESHOLDS value; a name that
    is not a feature is an error.
    """
    # pylint: disable-next=import-outside-toplevel
    from tensorflow_metadata.proto.v0 import schema_pb2

    unknown = sorted(set(thresholds) - set(FEATURES))
    if unknown:
        raise ValueError(f"thresholds for unknown features {unknown}; features: {FEATURES}")
    thresholds = {**DEFAULT_THRESHOLDS, **thresholds}
    schema = schema_pb2.Schema()
    for name in FEATURES:
        feature = schema.feature.add(name=name, type=(
            schema_pb2.FLOAT if name in FLOAT_FEATURES else schema_pb2.INT))
        if name in CATEGORICAL:
            feature.int_domain.is_categorical = True
        divergence = feature.drift_comparator.jensen_shannon_divergence
        divergence.threshold = thresholds[name]
        divergence.source.type = schema_pb2.HistogramSelection.Type.Value(HISTOGRAM_SOURCE)
    return schema


def _column(features: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """One feature's values as a non-empty 1-D array of the type the schema declares."""
    values = np.asarray(features[name], dtype=(
        np.float64 if name in FLOAT_FEATURES else np.int64)).reshape(-1)
    if values.size == 0:
        raise ValueError(f"feature {name!r} has no values")
    return values


def feature_statistics(features: Mapping[str, np.ndarray], schema):
    """TFDV statistics of FEATURES (a DatasetFeatureStatisticsList of one dataset).

    Each feature's values are examples of their own (the per-question and per-pair
    features have different lengths), so each is summarized alone and the summaries are
    put together into one dataset.
    """
    # pylint: disable=import-outside-toplevel
    import pandas as pd
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import statistics_pb2

    options = tfdv.StatsOptions(schema=schema, num_histogram_buckets=HISTOGRAM_BUCKETS,
                                num_quantiles_histogram_buckets=HISTOGRAM_BUCKETS,
                                num_rank_histogram_buckets=CATEGORY_VALUES)
    dataset = statistics_pb2.DatasetFeatureStatistics()
    for name in FEATURES:
        values = _column(features, name)
        summary = tfdv.generate_statistics_from_dataframe(pd.DataFrame({name: values}), options)
        dataset.features.extend(summary.datasets[0].features)
        dataset.num_examples = max(dataset.num_examples, values.size)
    return statistics_pb2.DatasetFeatureStatisticsList(datasets=[dataset])


def drift_anomalies(previous: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray],
                    thresholds: Mapping[str, float] = DEFAULT_THRESHOLDS):
    """TFDV's Anomalies proto of `current` validated against `previous` (drift only)."""
    import tensorflow_data_validation as tfdv  # pylint: disable=import-outside-toplevel

    schema = drift_schema(thresholds)
    return tfdv.validate_statistics(feature_statistics(current, schema), schema,
                                    previous_statistics=feature_statistics(previous, schema))


def measurements(anomalies) -> dict[str, FeatureDrift]:
    """The Jensen-Shannon divergence TFDV measured per feature, read from drift_skew_info."""
    # pylint: disable-next=import-outside-toplevel
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    jensen_shannon = anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE
    return {".".join(info.path.step): FeatureDrift(measurement.value, measurement.threshold)
            for info in anomalies.drift_skew_info for measurement in info.drift_measurements
            if measurement.type == jensen_shannon}


def compare(previous: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray],
            thresholds: Mapping[str, float] = DEFAULT_THRESHOLDS) -> dict[str, FeatureDrift]:
    """Divergence of each feature of `current` from `previous` (TFDV JSD), with its threshold,
    in FEATURES order.

    `previous` and `current` are `pair_features` of the two spans (any lengths);
    `thresholds` may name only some features (the others keep their defaults).
    """
    found = measurements(drift_anomalies(previous, current, thresholds))
    missing = [name for name in FEATURES if name not in found]
    if missing:
        raise RuntimeError(f"TFDV measured no Jensen-Shannon divergence for {missing}")
    return {name: found[name] for name in FEATURES}
