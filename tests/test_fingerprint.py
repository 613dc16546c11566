"""Code fingerprints follow each component's own imports, and nothing else."""

from pathlib import Path

from pipeline import fingerprint


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
