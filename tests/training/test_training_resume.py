"""A killed Trainer loses no training: it resumes after its last epoch, or only re-exports.

One scenario, played once per module (`killed_runs`) on a tiny BERT and 64
transformed pairs, as TFX would replay one Trainer in new executions: a
3-epoch run is killed right after its first epoch's backup; the next run
resumes at epoch 2 and is killed on entering the export; the last run, in
this process, exports without training. Each kill is an `os._exit` in a
subprocess, placed by a monkeypatch inside that subprocess.
"""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging as absl_logging
from tfx import v1 as tfx

from components.export.signatures import export_serving_model
from components.families.encoders import load_encoder
from components.model.classifier import build_classifier
from components.training import inputs, trainer
from components.training.backup import epochs_done, remove_backups
from components.training.hyperparameters import Hyperparameters
from fixtures.tiny_bert import make_tiny_checkpoint
from tests.conftest import REPO_ROOT
from tests.transformed import transform_sample

TRAIN_PAIRS = 64
BATCH_SIZE = 16
STEPS_PER_EPOCH = TRAIN_PAIRS // BATCH_SIZE
EPOCHS = 3
KILLED = 137  # the exit status of a subprocess killed where the test wants it

# Runs run_fn on the FnArgs in argv[1] and dies where argv[2] says: right after the
# first epoch's backup ("training"), or on entering the export ("export"), first
# saving the weights and the optimizer's step count it was about to export to argv[3].
KILLED_RUN = textwrap.dedent("""
    import json, os, sys, types
    import numpy as np
    import tf_keras as keras
    from components.training import trainer

    fn_args, where, saved = sys.argv[1:]
    compile_classifier = trainer.compile_classifier

    def eager_compile_classifier(model, hparams, total_steps):
        compile_classifier(model, hparams, total_steps)
        model.run_eagerly = True  # a few tiny steps: tracing them would take longer

    trainer.compile_classifier = eager_compile_classifier
    if where == "training":
        back_up = keras.callbacks.BackupAndRestore.on_epoch_end

        def on_epoch_end(self, epoch, logs=None):
            back_up(self, epoch, logs)
            os._exit(137)

        keras.callbacks.BackupAndRestore.on_epoch_end = on_epoch_end
    else:
        def export_serving_model(model, tft_output, export_dir):
            np.savez(saved, *model.get_weights(), iterations=model.optimizer.iterations.numpy())
            os._exit(137)

        trainer.export_serving_model = export_serving_model
    with open(fn_args, encoding="utf-8") as stream:
        trainer.run_fn(types.SimpleNamespace(**json.load(stream)))  # no TFX import: faster
""")


@dataclasses.dataclass(frozen=True)
class Workspace:
    checkpoint: Path
    transform_output: Path
    train_files: str


@dataclasses.dataclass(frozen=True)
class KilledRuns:
    workspace: Workspace
    trainer_dir: Path
    backup_dir: str
    epochs_backed_up: list[int]  # after the kill during training, then during the export
    resumed_output: str  # stdout and stderr of the run killed during the export
    about_to_export: Path  # .npz: the weights (arr_0...) and iterations it was exporting


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    """A tiny BERT checkpoint, its transform graph and 64 transformed training pairs."""
    root = tmp_path_factory.mktemp("resume")
    checkpoint = make_tiny_checkpoint(root / "tiny-bert")
    transformed = transform_sample(root, checkpoint, TRAIN_PAIRS, max_seq_length=32)
    return Workspace(checkpoint, transformed.transform_output, transformed.train_files)


def _fn_args(workspace: Workspace, trainer_dir: Path, execution: int) -> dict:
    """The FnArgs fields of one execution of the Trainer whose outputs are in `trainer_dir`."""
    hparams = Hyperparameters(checkpoint=str(workspace.checkpoint), epochs=EPOCHS,
                              batch_size=BATCH_SIZE, learning_rate=1e-3, warmup_ratio=0.0,
                              mixed_precision="none")
    return {"train_files": [workspace.train_files],
            "transform_output": str(workspace.transform_output),
            "model_run_dir": str(trainer_dir / "model_run" / str(execution)),
            "serving_model_dir": str(trainer_dir / "model" / str(execution) / "Format-Serving"),
            "custom_config": hparams.to_custom_config(), "base_model": None}


def _killed_run(fn_args: dict, where: str, saved: Path) -> str:
    """Runs run_fn in a subprocess killed `where` ("training" or "export"); its output."""
    fn_args_file = saved.with_suffix(".json")
    fn_args_file.write_text(json.dumps(fn_args))
    result = subprocess.run([sys.executable, "-c", KILLED_RUN, str(fn_args_file), where,
                             str(saved)], capture_output=True, text=True, cwd=REPO_ROOT,
                            check=False)
    output = result.stdout + result.stderr
    assert result.returncode == KILLED, output[-5000:]
    return output


@pytest.fixture(scope="module")
def killed_runs(workspace: Workspace, tmp_path_factory) -> KilledRuns:
    """The first two executions: killed during training, then resumed and killed exporting."""
    root = tmp_path_factory.mktemp("killed")
    trainer_dir = root / "Trainer"
    backup_dir = trainer.resume_dir(tfx.components.FnArgs(**_fn_args(workspace, trainer_dir, 1)))
    _killed_run(_fn_args(workspace, trainer_dir, 1), "training", root / "first")
    backed_up = [epochs_done(backup_dir)]
    output = _killed_run(_fn_args(workspace, trainer_dir, 2), "export", root / "second.npz")
    backed_up.append(epochs_done(backup_dir))
    return KilledRuns(workspace, trainer_dir, backup_dir, backed_up, output,
                      root / "second.npz")


@pytest.mark.slow  # three Trainer executions in subprocesses (make test-slow)
def test_a_run_killed_during_training_resumes_after_its_last_epoch(killed_runs: KilledRuns):
    assert killed_runs.epochs_backed_up[0] == 1
    output = killed_runs.resumed_output
    assert (f"Resuming at epoch 2/3: 1 already trained (backup in {killed_runs.backup_dir}, "
            "left by an interrupted run)") in output
    assert "Training: epoch 1/3 done" not in output  # it trained epochs 2 and 3 only
    assert "Training: epoch 2/3 done" in output and "Training: epoch 3/3 done" in output
    with np.load(killed_runs.about_to_export) as saved:
        assert int(saved["iterations"]) == EPOCHS * STEPS_PER_EPOCH  # the optimizer resumed too
    assert killed_runs.epochs_backed_up[1] == EPOCHS


def _backup(resume_root: Path, name: str, written_days_ago: float) -> Path:
    """A stand-in for a backup whose newest file was written `written_days_ago`."""
    checkpoint = resume_root / name / "chief" / "checkpoint"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("")
    written = checkpoint.stat().st_mtime - written_days_ago * 86400
    os.utime(checkpoint, (written, written))
    return resume_root / name


@pytest.mark.slow
def test_a_run_killed_during_export_exports_without_retraining(
        killed_runs: KilledRuns, monkeypatch, caplog):
    fn_args = tfx.components.FnArgs(**_fn_args(killed_runs.workspace, killed_runs.trainer_dir, 3))
    backup_dir = trainer.resume_dir(fn_args)
    assert backup_dir == killed_runs.backup_dir  # a new execution of the same Trainer
    resume_root = Path(backup_dir).parent
    _backup(resume_root, "newer-config", 2)  # left by configurations changed since
    _backup(resume_root, "older-config", 5)
    monkeypatch.setattr(inputs, "training_batches", lambda *args, **kwargs: pytest.fail(
        "it trains again: training batches were asked for"))
    # A `qqp-tfx run` earlier in this process (pipeline.cli.progress) keeps absl records from
    # the root logger, where caplog listens.
    monkeypatch.setattr(absl_logging.get_absl_logger(), "propagate", True)
    exported = []

    def export(model: keras.Model, tft_output: tft.TFTransformOutput, export_dir: str) -> None:
        exported.append(model.get_weights())
        export_serving_model(model, tft_output, export_dir)

    monkeypatch.setattr(trainer, "export_serving_model", export)

    trainer.run_fn(fn_args)
    assert (f"All 3 epochs were already trained (backup in {backup_dir}, left by an "
            "interrupted run): exporting without retraining") in caplog.text
    assert (Path(fn_args.serving_model_dir) / "saved_model.pb").is_file()
    with np.load(killed_runs.about_to_export) as saved:
        trained = [saved[f"arr_{index}"] for index in range(len(saved.files) - 1)]
    assert len(exported[0]) == len(trained)
    for weights, expected in zip(exported[0], trained):
        np.testing.assert_array_equal(weights, expected)
    keras.utils.set_random_seed(Hyperparameters().seed)
    untrained = build_classifier(load_encoder(str(killed_runs.workspace.checkpoint)))
    assert not all(np.allclose(weights, initial)
                   for weights, initial in zip(exported[0], untrained.get_weights()))
    # Its own backup and the older of the other configurations' are gone, the newer is kept.
    assert sorted(path.name for path in resume_root.iterdir()) == ["newer-config"]
    assert f"Removed the epoch backup {resume_root / 'older-config'}" in caplog.text


def test_after_an_export_only_the_most_recently_written_other_backup_is_kept(tmp_path: Path):
    own = _backup(tmp_path, "own", 9)
    kept = _backup(tmp_path, "b", 0.5)
    older = [_backup(tmp_path, "a", 1), _backup(tmp_path, "c", 30)]
    os.utime(kept, (0, 0))  # a directory's own time says nothing: only its files' do
    removed = remove_backups(str(own))
    assert sorted(removed) == sorted(str(path) for path in (own, *older))
    assert [path.name for path in tmp_path.iterdir()] == [kept.name]
