"""New data every week on the compiled Vertex AI spec: one spec, compiled once, run per span.

The spec reads `gs://b/qqp/span-{SPAN}`: ExampleGen's pre-cache-check driver picks the
newest span when the job runs, as a scheduled Vertex AI pipeline would. The first
submission ingests span 1 and pushes version 1; span 2 arrives, the same spec runs
again: span 2 alone is ingested, the training window is spans 1 and 2 (span 1's examples
from the first job, through the span registry under the pipeline root), the candidate
starts from version 1's weights, is compared with it span by span, and is pushed as
version 2. Two submissions of about five minutes each: `make test-slow`.
"""

import json
from pathlib import Path

import pytest
import yaml

from fixtures.tiny_bert import make_tiny_checkpoint
from pipeline import cli
from tests.end_to_end import gate_scenario

pytestmark = pytest.mark.slow
IMAGE = "us-docker.pkg.dev/my-project/qqp/qqp-tfx:test"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A local root holding bucket `b` (span 1, checkpoint) and the compiled spec."""
    root = tmp_path_factory.mktemp("compiled-spans")
    gate_scenario.write_data(root / "local" / "b" / "qqp" / "span-1")
    make_tiny_checkpoint(root / "local" / "b" / "tiny-bert")
    (root / "weekly.yaml").write_text(yaml.safe_dump({
        "data": "gs://b/qqp/span-{SPAN}", "checkpoint": "gs://b/tiny-bert",
        "pipeline-root": "gs://b/root", "serving-dir": "/gcs/b/serving", "image": IMAGE,
        **gate_scenario.TRAINING, "max-seq-length": gate_scenario.GOOD_MAX_SEQ_LENGTH}))
    assert cli.main(["compile", "--config", str(root / "weekly.yaml"),
                     "--output", str(root / "weekly.json")]) == 0
    return root


def _submit(workspace: Path, capsys) -> str:
    assert cli.main(["run-compiled", str(workspace / "weekly.json"),
                     "--local-root", str(workspace / "local")]) == 0
    return capsys.readouterr().out


def _version(workspace: Path, number: int) -> Path:
    return workspace / "local" / "b" / "serving" / "qqp" / str(number)


def _warm_start_record(version_dir: Path) -> dict:
    return json.loads((version_dir / "assets.extra" / "warm_start" / "model.json").read_text())


def test_the_first_span_is_pushed_as_version_1(workspace: Path, capsys):
    output = _submit(workspace, capsys)
    assert "no model is served yet" in output and f"pushed to: {_version(workspace, 1)}" in output
    assert _warm_start_record(_version(workspace, 1))["train_spans"] == [1]


def test_the_same_spec_on_span_2_warm_starts_from_version_1_and_pushes_version_2(
        workspace: Path, capsys):
    gate_scenario.write_data(workspace / "local" / "b" / "qqp" / "span-2", part=1)
    output = _submit(workspace, capsys)
    assert f"pushed to: {_version(workspace, 2)}" in output
    assert "worst span: " in output  # compared with version 1 on each span's eval pairs
    version_1, version_2 = (_warm_start_record(_version(workspace, number)) for number in (1, 2))
    assert version_2["train_spans"] == [1, 2]
    assert version_2["started_from"] == {"from": "served", "version": 1}
    assert version_2["start_weights_sha256"] == version_1["weights_sha256"]
    registry = workspace / "local" / "b" / "root" / "spans"
    assert sorted(path.name for path in registry.iterdir()) == ["span-1.json", "span-2.json"]
