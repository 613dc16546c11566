"""The store of `tests/pipeline/runs_store.py`, shared by the `qqp-tfx runs` and report tests."""

from __future__ import annotations

import pytest

from tests.pipeline.runs_store import build_runs_store
from tests.pipeline.tfx_shaped_store import TfxShapedStore


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> TfxShapedStore:
    """ML Metadata records of the seven runs of `runs_store.EXPECTED` (written once a module)."""
    return build_runs_store(tmp_path_factory.mktemp("runs"))
