"""Code fingerprints follow each component's own imports, and nothing else.

TFX re-runs a node when its cache key changes (its execution properties, where the code
fingerprint is) or when one of its inputs is a new artifact, so the nodes a code edit
re-runs are those whose fingerprint changed and every node downstream of them.
"""

import json
import shutil
from pathlib import Path

import pytest

from pipeline import fingerprint
from pipeline.config import COMPONENT_IDS

DATA_NODES = {"QqpExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
              "DataValidationGate"}
# Transform and every node after it: ServedModel reads the serving directory and never
# comes from the cache anyway. The drift gate, the window and the warm start come before.
FROM_TRANSFORM_ON = set(COMPONENT_IDS) - DATA_NODES - {"ServedModel", "DriftGate",
                                                       "TrainingWindow", "WarmStart"}


def test_editing_a_module_changes_only_the_fingerprints_of_its_importers(tmp_path: Path,
                                                                          monkeypatch):
    package = tmp_path / "components"
    (package / "text").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "features.py").write_text("LABEL = 'is_duplicate'\n")
    (package / "trainer.py").write_text("from components.features import LABEL\n")
    (package / "pusher.py").write_text("import os\n")
    (package / "text" / "__init__.py").write_text("from components.text import algorithm\n")
    (package / "text" / "algorithm.py").write_text("STEPS = 1\n")
    (package / "transform.py").write_text("import components.text\n")
    monkeypatch.setattr(fingerprint, "REPO_ROOT", tmp_path)

    assert fingerprint.module_closure("components.trainer") == [
        "components", "components.features", "components.trainer"]
    # A package imported by name is its __init__.py, and what that imports.
    assert fingerprint.module_closure("components.transform") == [
        "components", "components.text", "components.text.algorithm", "components.transform"]
    trainer_before = fingerprint.code_fingerprint("components.trainer")
    pusher_before = fingerprint.code_fingerprint("components.pusher")
    (package / "pusher.py").write_text("import os\nimport shutil\n")
    assert fingerprint.code_fingerprint("components.trainer") == trainer_before
    assert fingerprint.code_fingerprint("components.pusher") != pusher_before
    (package / "features.py").write_text("LABEL = 'label'\n")
    assert fingerprint.code_fingerprint("components.trainer") != trainer_before
    with pytest.raises(ValueError, match="components.missing: no such project module"):
        fingerprint.code_fingerprint("components.missing")


def test_the_real_trainer_fingerprint_covers_its_model_code():
    closure = fingerprint.module_closure("components.training.trainer")
    assert {"components.model.classifier", "components.export.signatures",
            "components.training.inputs", "components.kernels.fused_ops"} <= set(closure)
    assert "components.serving.pusher" not in closure


def _pipeline():
    # pylint: disable=import-outside-toplevel
    from pipeline.config import PipelineConfig
    from pipeline.data_inputs import DataInput
    from pipeline.pipeline import create_pipeline

    return create_pipeline(PipelineConfig(), DataInput("/data", {"train": "train.tsv",
                                                                 "eval": "dev.tsv"}))


def _node_fingerprints() -> dict[str, str]:
    """Each pipeline node's code (or schema) fingerprint, as it enters TFX's cache key."""
    fingerprints = {}
    for node in _pipeline().components:
        properties = node.exec_properties
        custom_config = json.loads(properties.get("custom_config") or "{}")
        fingerprints[node.id] = (properties.get("code_fingerprint")
                                 or properties.get("schema_fingerprint")
                                 or custom_config.get("code_fingerprint"))
    return fingerprints


def _downstream_closure(changed: set[str]) -> set[str]:
    """The nodes TFX re-runs when the cache keys of `changed` change: those and every node
    downstream of them (their inputs are new artifacts)."""
    nodes = {node.id: node for node in _pipeline().components}
    rerun, pending = set(), list(changed)
    while pending:
        node_id = pending.pop()
        if node_id not in rerun:
            rerun.add(node_id)
            pending.extend(child.id for child in nodes[node_id].downstream_nodes)
    return rerun


@pytest.fixture
def components_copy(tmp_path: Path, monkeypatch) -> Path:
    """A copy of components/ that the fingerprints read (and the schema, which they hash)."""
    shutil.copytree(fingerprint.REPO_ROOT / "components", tmp_path / "components")
    monkeypatch.setattr(fingerprint, "REPO_ROOT", tmp_path)
    from pipeline import pipeline  # pylint: disable=import-outside-toplevel

    schema = tmp_path / "schema.pbtxt"
    shutil.copy(pipeline.SCHEMA_FILE, schema)
    monkeypatch.setattr(pipeline, "SCHEMA_FILE", schema)
    return tmp_path


def _changed_by_editing(path: Path, before: dict[str, str]) -> set[str]:
    source = path.read_text(encoding="utf-8")
    path.write_text(source + "\n# edited\n", encoding="utf-8")
    try:
        after = _node_fingerprints()
    finally:
        path.write_text(source, encoding="utf-8")
    return {node for node in before if after[node] != before[node]}


# Editing the module on the left must change the cache key of exactly the nodes on the right.
RERUN_ON_EDIT = {
    "data/example_gen.py": {"QqpExampleGen"},
    "data/records.py": {"QqpExampleGen"},
    "data/validation_gate.py": {"DataValidationGate"},
    "data/window.py": {"DriftGate", "TrainingWindow", "WarmStart"},  # the span registry
    "drift/metrics.py": {"DriftGate"},
    "drift/gate.py": {"DriftGate"},
    "training/warm_start.py": {"Trainer", "WarmStart"},
    "training/warm_start_component.py": {"WarmStart"},
    "evaluation/per_span.py": {"BlessingGate"},
    "text/preprocessing.py": {"Transform"},
    "training/trainer.py": {"Trainer"},
    "training/not_fine_tuned.py": {"NotFineTunedModel"},
    # Reads its version; the gate reads its SavedModel's place.
    "evaluation/served_model.py": {"ServedModel", "ServedModelEvaluator", "BlessingGate"},
    "evaluation/served_model_evaluator.py": {"ServedModelEvaluator"},
    "evaluation/evaluator.py": {"Evaluator", "ServedModelEvaluator"},  # the executor both extend
    "precision/scoring.py": {"NotFineTunedModel", "Evaluator", "ServedModelEvaluator",
                             "BlessingGate"},
    "training/optimizer.py": {"Trainer"},
    "evaluation/gate.py": {"BlessingGate"},
    "evaluation/intervals.py": {"BlessingGate"},
    "evaluation/paired_scores.py": {"BlessingGate"},
    "serving/pusher.py": {"Pusher"},
    "serving/model_card.py": {"Pusher"},
    "serving/history.py": {"Pusher"},
    "serving/check.py": {"ServingCheck"},
    "serving/check_worker.py": {"ServingCheck"},  # runs in its own process: fingerprinted too
    "serving/layout.py": {"Pusher", "ServedModel", "ServedModelEvaluator", "BlessingGate",
                          "WarmStart", "ServingCheck"},
    "model/classifier.py": {"Trainer", "NotFineTunedModel"},
    # Copies remote checkpoints (the drift gate, the warm start's identity, Transform, the
    # Trainers), the served model and pushes.
    "file_trees.py": {"DriftGate", "WarmStart", "Transform", "Trainer", "NotFineTunedModel",
                      "ServedModel", "ServedModelEvaluator", "BlessingGate", "Pusher"},
}


def test_every_node_running_project_code_reruns_when_that_code_is_edited(components_copy):
    before = _node_fingerprints()
    assert set(before) == set(COMPONENT_IDS)
    assert {node for node, value in before.items() if value is None} == {
        "StatisticsGen", "ExampleValidator"}  # TFX's own code only
    for module, expected in RERUN_ON_EDIT.items():
        assert _changed_by_editing(components_copy / "components" / module, before) == expected, (
            module)
    schema = components_copy / "schema.pbtxt"
    assert _changed_by_editing(schema, before) == {"ImportSchemaGen"}


def _text_sources() -> list[str]:
    """Every source file of Transform's text code, package __init__ files included."""
    root = fingerprint.REPO_ROOT / "components"
    return sorted(path.relative_to(root).as_posix() for path in (root / "text").rglob("*.py"))


def test_text_sources_are_the_tokenizers_and_their_packages():
    assert {"text/__init__.py", "text/preprocessing.py", "text/tokenization/__init__.py",
            "text/tokenization/base.py", "text/tokenization/wordpiece.py",
            "text/tokenization/sentencepiece_unigram.py",
            "text/tokenization/sentencepiece_model.py", "text/tokenization/byte_level_bpe.py",
            "text/tokenization/unicode_classes.py"} <= set(_text_sources())


@pytest.mark.parametrize("module", [*_text_sources(), "__init__.py", "families/__init__.py",
                                    "families/table.py", "families/checkpoint.py"])
def test_an_edited_tokenizer_reruns_transform_and_everything_after_it(components_copy, module):
    """An edited tokenizer (or a package its import runs) must never be served from the cache:
    Transform re-runs, and with it the models, the evaluations, the gate and the Pusher; the
    data components stay cached."""
    before = _node_fingerprints()
    changed = _changed_by_editing(components_copy / "components" / module, before)
    assert "Transform" in changed
    rerun = _downstream_closure(changed)
    assert FROM_TRANSFORM_ON <= rerun
    if module.startswith("text/"):
        assert not rerun & DATA_NODES
