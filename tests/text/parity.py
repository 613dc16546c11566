"""Shared by the tokenizer test files: a family's tokenizer files trained on the bundled
sample, and the parity assertion against its Hugging Face fast tokenizer."""

from pathlib import Path

import pytest

from fixtures import families


def trained_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, model_type: str) -> Path:
    """A directory with the family's tokenizer files trained on the bundled sample's train
    questions, and a config.json naming its model_type."""
    directory = tmp_path_factory.mktemp(model_type)
    families.write_tokenizer_files(directory, families.training_texts(), model_type)
    families.write_model_type(directory, model_type)
    return directory


def assert_parity(directory: Path, first: list[str], second: list[str], max_length: int) -> dict:
    """Every pair and single question is identical to Hugging Face; returns the counts."""
    counts = families.parity_counts(directory, first, second, max_length)
    assert (counts["pairs_identical"], counts["questions_identical"]) == (
        len(first), 2 * len(first)), counts["first_differences"]
    return counts
