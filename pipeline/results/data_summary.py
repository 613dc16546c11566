"""A short summary of the ingested data: examples and duplicates per split."""

from __future__ import annotations

import os

from tensorflow_metadata.proto.v0 import statistics_pb2

from components.features import LABEL
from pipeline.results.run_results import NodeResult, split_names


def load_split_statistics(uri: str, split: str) -> statistics_pb2.DatasetFeatureStatistics:
    """The statistics of one split of a StatisticsGen output artifact."""
    path = os.path.join(uri, f"Split-{split}", "FeatureStats.pb")
    with open(path, "rb") as stream:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(stream.read()).datasets[0]


def label_counts(statistics: statistics_pb2.DatasetFeatureStatistics) -> dict[str, int]:
    """Counts of each label value, from the categorical label's top values."""
    for feature in statistics.features:
        if feature.path.step == [LABEL]:
            return {value.value: int(value.frequency)
                    for value in feature.string_stats.top_values}
    raise KeyError(f"no statistics for feature {LABEL}")


def split_counts(statistics_gen: NodeResult) -> dict[str, tuple[int, int, int]]:
    """Split name -> (pairs, duplicates, not duplicates), from StatisticsGen's output."""
    artifact = statistics_gen.outputs["statistics"][0]
    counts = {}
    for split in split_names(artifact):
        statistics = load_split_statistics(artifact.uri, split)
        labels = label_counts(statistics)
        counts[split] = (int(statistics.num_examples), labels.get("1", 0), labels.get("0", 0))
    return counts


def summarize(statistics_gen: NodeResult) -> list[str]:
    """One line per split: number of examples and of duplicates."""
    return [f"{split}: {pairs:,} pairs, {duplicates:,} duplicates, {others:,} not"
            for split, (pairs, duplicates, others) in split_counts(statistics_gen).items()]
