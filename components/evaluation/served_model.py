"""The model users get now: a snapshot of the newest version in the serving directory.

The regression baseline of every run is the version TF Serving serves under its
default policy (the highest complete version number), read from the serving
directory when the run gets there. No ML Metadata query is involved, so every
runner (LocalDagRunner, Vertex AI, Kubeflow Pipelines) compares a candidate
with the same model, and no blessing (the TFMA Evaluators' included) can make a
model the baseline: only being served can, and this pipeline's Pusher serves
only what the BlessingGate blessed.

The component copies that version's files into its own Model artifact
(`<uri>/Format-Serving`, the layout TFX's Evaluator reads) and records the
version number in the custom property `served_version`; with nothing served
the artifact is empty and `served_version` is 0. It reads state that ML
Metadata does not track, so no runner may reuse its output from a cache
(`pipeline.pipeline.UNCACHED_NODES`).
"""

import os

from tfx import types
from tfx import v1 as tfx

from components.file_trees import copy_tree
from components.serving.layout import SERVED_VERSION_KEY, newest_complete_version, version_number

SERVED_FROM_KEY = "served_from"
SERVING_SUBDIR = "Format-Serving"  # where TFX's Evaluator looks for a Model's SavedModel


def served_version(model: types.Artifact) -> int:
    """The version number a ServedModel artifact holds (0: nothing was served)."""
    return model.get_int_custom_property(SERVED_VERSION_KEY)


@tfx.dsl.components.component
def ServedModel(
        serving_dir: tfx.dsl.components.Parameter[str],
        model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
) -> None:
    """Copies the newest complete version under `serving_dir` into `model`, if there is one."""
    version_dir = newest_complete_version(serving_dir)
    model.set_int_custom_property(SERVED_VERSION_KEY, version_number(version_dir))
    if version_dir is None:
        return
    copy_tree(version_dir, os.path.join(model.uri, SERVING_SUBDIR))
    model.set_string_custom_property(SERVED_FROM_KEY, version_dir)
