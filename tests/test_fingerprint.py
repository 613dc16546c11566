"""Code fingerprints follow each component's own imports, and nothing else."""

import json
import shutil
from pathlib import Path

from pipeline import fingerprint
from pipeline.config import COMPONENT_IDS


def test_editing_a_module_changes_only_the_fingerprints_of_its_importers(tmp_path: Path,
                                                                          monkeypatch):
    package = tmp_path / "components"
    package.mkdir()
    (package / "features.py").write_text("LABEL = 'is_duplicate'\n")
    (package / "trainer.py").write_text("from components.features import LABEL\n")
    (package / "pusher.py").write_text("import os\n")
    monkeypatch.setattr(fingerprint, "REPO_ROOT", tmp_path)

    assert fingerprint.module_closure("components.trainer") == [
        "components.features", "components.trainer"]
    trainer_before = fingerprint.code_fingerprint("components.trainer")
    pusher_before = fingerprint.code_fingerprint("components.pusher")
    (package / "pusher.py").write_text("import os\nimport shutil\n")
    assert fingerprint.code_fingerprint("components.trainer") == trainer_before
    assert fingerprint.code_fingerprint("components.pusher") != pusher_before
    (package / "features.py").write_text("LABEL = 'label'\n")
    assert fingerprint.code_fingerprint("components.trainer") != trainer_before


def test_the_real_trainer_fingerprint_covers_its_model_code():
    closure = fingerprint.module_closure("components.trainer")
    assert {"components.model", "components.export", "components.training_inputs"} <= set(
        closure)
    assert "components.serving_pusher" not in closure


def _node_fingerprints() -> dict[str, str]:
    """Each pipeline node's code (or schema) fingerprint, as it enters TFX's cache key."""
    from pipeline.config import PipelineConfig  # pylint: disable=import-outside-toplevel
    from pipeline.data_inputs import DataInput  # pylint: disable=import-outside-toplevel
    from pipeline.pipeline import create_pipeline  # pylint: disable=import-outside-toplevel

    pipeline = create_pipeline(PipelineConfig(), DataInput("/data", {"train": "train.tsv",
                                                                     "eval": "dev.tsv"}))
    fingerprints = {}
    for node in pipeline.components:
        properties = node.exec_properties
        custom_config = properties.get("custom_config") or {}
        if isinstance(custom_config, str):
            custom_config = json.loads(custom_config)
        fingerprints[node.id] = (properties.get("code_fingerprint")
                                 or properties.get("schema_fingerprint")
                                 or custom_config.get("code_fingerprint"))
    return fingerprints


# Editing the module on the left must change the cache key of exactly the nodes on the right.
RERUN_ON_EDIT = {
    "example_gen": {"QqpExampleGen"},
    "data_gate": {"DataValidationGate"},
    "transform": {"Transform"},
    "trainer": {"Trainer"},
    "not_fine_tuned": {"NotFineTunedModel"},
    "served_model": {"ServedModel", "ServedModelEvaluator"},  # which reads its version
    "served_model_evaluator": {"ServedModelEvaluator"},
    "evaluator": {"Evaluator", "ServedModelEvaluator"},  # the executor both extend
    "scoring_precision": {"NotFineTunedModel", "Evaluator", "ServedModelEvaluator"},
    "optimizer": {"Trainer"},
    "blessing_gate": {"BlessingGate"},
    "serving_pusher": {"Pusher", "ServedModel", "ServedModelEvaluator"},  # via served_model
    "model": {"Trainer", "NotFineTunedModel"},
}


def test_every_node_running_project_code_reruns_when_that_code_is_edited(tmp_path: Path,
                                                                          monkeypatch):
    shutil.copytree(fingerprint.REPO_ROOT / "components", tmp_path / "components")
    monkeypatch.setattr(fingerprint, "REPO_ROOT", tmp_path)
    from pipeline import pipeline  # pylint: disable=import-outside-toplevel

    schema = tmp_path / "schema.pbtxt"
    shutil.copy(pipeline.SCHEMA_FILE, schema)
    monkeypatch.setattr(pipeline, "SCHEMA_FILE", schema)
    before = _node_fingerprints()
    assert set(before) == set(COMPONENT_IDS)
    assert {node for node, value in before.items() if value is None} == {
        "StatisticsGen", "ExampleValidator"}  # TFX's own code only
    for module, expected in RERUN_ON_EDIT.items():
        path = tmp_path / "components" / f"{module}.py"
        source = path.read_text(encoding="utf-8")
        path.write_text(source + "\n# edited\n", encoding="utf-8")
        after = _node_fingerprints()
        assert {node for node in before if after[node] != before[node]} == expected, module
        path.write_text(source, encoding="utf-8")
    schema.write_text(schema.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    after = _node_fingerprints()
    assert {node for node in before if after[node] != before[node]} == {"ImportSchemaGen"}
