"""The Trainer's epoch backups: what an interrupted run left, and when backups are removed.

Keras' `BackupAndRestore` writes a checkpoint at the end of every epoch (the
model, its optimizer's slots and the epoch, in `<backup>/chief/`). The Trainer
keeps it until the model trained from it has been exported, so a run killed
during training resumes after its last completed epoch, and one killed during
the export exports again without retraining.

Backups live under `<Trainer dir>/resume/<key>`, one per set of training inputs
and configuration (`components.training.trainer.resume_dir`; the configuration includes
the Trainer's code fingerprint, so every code edit gets a new key). Once a run
has exported, the chief removes its own backup and bounds what other
configurations left: of the other backups in `resume/`, the most recently
written one is kept (an interrupted run someone may still re-run), older ones
are removed.
"""

from __future__ import annotations

import os

import tensorflow as tf
import tf_keras as keras
from absl import logging

# Other configurations' backups kept after a successful export: the most recently written.
KEEP_OTHER_BACKUPS = 1
# Where BackupAndRestore's chief writes inside a backup, and the epoch variable it saves.
_CHECKPOINT_SUBDIR = "chief"
_SAVED_EPOCH_KEY = "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"


def _latest_checkpoint(backup_dir: str) -> str | None:
    return tf.train.latest_checkpoint(os.path.join(backup_dir, _CHECKPOINT_SUBDIR))


def epochs_done(backup_dir: str) -> int:
    """How many epochs the backup in `backup_dir` holds (0 when there is none)."""
    checkpoint = _latest_checkpoint(backup_dir)
    if checkpoint is None:
        return 0
    # BackupAndRestore saves the index of the epoch that just ended.
    return int(tf.train.load_checkpoint(checkpoint).get_tensor(_SAVED_EPOCH_KEY)) + 1


def restore_weights(model: keras.Model, backup_dir: str) -> None:
    """Loads the backed-up weights into `model` (optimizer slots are not needed to export)."""
    tf.train.Checkpoint(model=model).restore(
        _latest_checkpoint(backup_dir)).expect_partial().assert_existing_objects_matched()


def _last_written(backup_dir: str) -> float:
    """When a file of the backup was last written (seconds since the epoch)."""
    return max((tf.io.gfile.stat(os.path.join(directory, name)).mtime_nsec / 1e9
                for directory, _, names in tf.io.gfile.walk(backup_dir) for name in names),
               default=0.0)


def remove_backups(backup_dir: str) -> list[str]:
    """Removes `backup_dir` and all but the KEEP_OTHER_BACKUPS newest other backups next to it.

    Call it after the export succeeded, on the chief only. Returns the removed
    directories and logs each one.
    """
    backup_dir = backup_dir.rstrip("/")
    resume_root = os.path.dirname(backup_dir)
    names = tf.io.gfile.listdir(resume_root) if tf.io.gfile.isdir(resume_root) else []
    others = sorted((path for path in (os.path.join(resume_root, name.rstrip("/"))
                                       for name in names)
                     if path != backup_dir and tf.io.gfile.isdir(path)),
                    key=_last_written, reverse=True)
    removed = []
    if tf.io.gfile.exists(backup_dir):
        tf.io.gfile.rmtree(backup_dir)
        removed.append(backup_dir)
        logging.info("Exported: removed this run's epoch backup %s", backup_dir)
    for path in others[KEEP_OTHER_BACKUPS:]:
        tf.io.gfile.rmtree(path)
        removed.append(path)
        logging.warning("Removed the epoch backup %s of another configuration (only the %d "
                        "most recently written are kept)", path, KEEP_OTHER_BACKUPS)
    return removed
