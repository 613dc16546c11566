"""A SavedModel loaded the way TF Serving loads it: the TF1 loader, in a session of its own.

TF Serving's TensorFlow platform imports a version's MetaGraph (tag `serve`) into a
graph and runs its signatures in a TF1 session made with the session config of
its platform config. For this model that config is `serving/bf16_platform_config.pbtxt`
on CPUs with native bf16 (grappler's oneDNN bf16 rewrite on) and TensorFlow's defaults
elsewhere; `session_config` builds the same ConfigProto.
`ServingSession.run` is a Predict call: request tensors by the signature's input keys,
response tensors by its output keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2

SERVE_TAG = "serve"


def session_config(bf16: bool) -> config_pb2.ConfigProto:
    """The session config TF Serving runs this model with (bf16: the platform config's)."""
    config = config_pb2.ConfigProto()
    if bf16:
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
            rewriter_config_pb2.RewriterConfig.ON)
    return config


class ServingSession:
    """One loaded version: its own graph and session, its signatures by name."""

    def __init__(self, export_dir: str, bf16: bool):
        self.export_dir = export_dir
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=session_config(bf16))
        with self._graph.as_default():
            meta_graph = tf.compat.v1.saved_model.load(self._session, [SERVE_TAG], export_dir)
        self.signatures = dict(meta_graph.signature_def)

    def run(self, signature: str, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """The signature's outputs for `inputs` (input key -> array-like), as TF Serving's
        Predict computes them; a bad request raises TensorFlow's error (InvalidArgument)."""
        if signature not in self.signatures:
            raise KeyError(f"{self.export_dir}: no signature {signature!r} "
                           f"(it has {', '.join(sorted(self.signatures))})")
        signature_def = self.signatures[signature]
        unknown = set(inputs) - set(signature_def.inputs)
        if unknown:
            raise KeyError(f"{self.export_dir}: signature {signature!r} has no input "
                           f"{', '.join(sorted(unknown))}")
        feeds = {signature_def.inputs[name].name: value for name, value in inputs.items()}
        fetches = {name: output.name for name, output in signature_def.outputs.items()}
        return self._session.run(fetches, feeds)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "ServingSession":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
