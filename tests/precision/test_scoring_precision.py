"""bf16 scoring: on only where the CPU computes bf16, and it changes outputs only slightly.

The same check runs through TF Serving's loading path: a TF1 Session created with the
session_config of serving/bf16_platform_config.pbtxt.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
from transformers import BertConfig, TFBertModel

from components.kernels.serving_graph import serving_forward
from components.model.classifier import build_classifier
from components.precision import scoring
from components.precision.keras_policy import has_bf16_cpu
from components.precision.scoring import bf16_rewrite, default_precision, uses_bf16

PLATFORM_CONFIG = Path(__file__).resolve().parents[2] / "serving" / "bf16_platform_config.pbtxt"
# Largest |P(bf16) - P(float32)| accepted on the tiny model's logits (bf16 keeps 8 bits of
# mantissa: about 3 significant digits).
TOLERANCE = 0.02


@pytest.mark.parametrize("precision, flags, expected", [
    ("auto", {"avx512f", "avx512_bf16"}, True),
    ("auto", {"amx_bf16", "amx_tile"}, True),
    ("auto", {"avx512f", "avx2"}, False),        # no native bf16: float32
    ("float32", {"avx512_bf16"}, False),
    ("bfloat16", set(), True),
])
def test_bf16_is_used_only_where_the_cpu_has_it_unless_forced(precision, flags, expected):
    assert uses_bf16(precision, flags) is expected


def test_the_pipeline_precision_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(scoring.PRECISION_ENV, raising=False)
    assert default_precision() == "auto"
    monkeypatch.setenv(scoring.PRECISION_ENV, "float32")
    assert default_precision() == "float32"
    monkeypatch.setenv(scoring.PRECISION_ENV, "fp8")
    with pytest.raises(ValueError, match="auto, float32, bfloat16"):
        default_precision()


def test_the_rewrite_is_scoped():
    options = tf.config.optimizer.get_experimental_options
    assert not options().get(scoring.BF16_REWRITE, False)
    with bf16_rewrite(True):
        assert options()[scoring.BF16_REWRITE]
        with bf16_rewrite(False):
            assert not options()[scoring.BF16_REWRITE]
        assert options()[scoring.BF16_REWRITE]
    assert not options()[scoring.BF16_REWRITE]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[str, dict[str, np.ndarray]]:
    """A tiny random BERT pair classifier saved as exported (components.kernels.serving_graph)
    with a `probability` signature, and inputs."""
    tf.keras.utils.set_random_seed(0)
    model = build_classifier(TFBertModel(BertConfig(
        vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128)))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in names}
    forward = serving_forward(model, names)  # as exported: weights in its variables

    @tf.function(input_signature=[spec])
    def probability(features):
        return {"probability": tf.sigmoid(4.0 * forward(features))}

    module = tf.Module()
    module.forward = forward
    directory = str(tmp_path_factory.mktemp("tiny") / "model")
    tf.saved_model.save(module, directory, signatures={"serving_default": probability})
    ids = np.random.default_rng(0).integers(1, 300, size=(32, 24)).astype(np.int32)
    return directory, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                       "token_type_ids": np.zeros_like(ids)}


def _check_close_and_rewritten(float32: np.ndarray, rewritten: np.ndarray) -> None:
    assert np.abs(rewritten - float32).max() <= TOLERANCE
    if has_bf16_cpu():  # the rewrite took effect: bf16 rounding shows in the outputs
        assert not np.array_equal(rewritten, float32)


def test_bf16_scoring_of_a_loaded_model_stays_close_to_float32(tiny_model):
    directory, features = tiny_model
    signature = tf.saved_model.load(directory).signatures["serving_default"]
    float32 = signature(**features)["probability"].numpy()
    with bf16_rewrite(True):
        rewritten = signature(**features)["probability"].numpy()
    _check_close_and_rewritten(float32, rewritten)
    # Out of the context, the same function computes in float32 again.
    np.testing.assert_array_equal(signature(**features)["probability"].numpy(), float32)


def _session_config(path: Path) -> config_pb2.ConfigProto:
    """The session_config block of a TF Serving platform config file."""
    match = re.search(r"session_config \{(.*?)\n {10}\}", path.read_text(encoding="utf-8"),
                      re.S)
    assert match, f"{path}: no session_config block"
    return text_format.Parse(match.group(1), config_pb2.ConfigProto())


def _session_probabilities(directory: str, features: dict[str, np.ndarray],
                           config: config_pb2.ConfigProto) -> np.ndarray:
    """The signature's output in a TF1 Session, the way TF Serving loads a SavedModel."""
    with tf.Graph().as_default(), tf.compat.v1.Session(config=config) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], directory)
        signature = meta_graph.signature_def["serving_default"]
        return session.run(signature.outputs["probability"].name,
                           {signature.inputs[name].name: value
                            for name, value in features.items()})


def test_the_tf_serving_session_config_switches_the_rewrite_on(tiny_model):
    config = _session_config(PLATFORM_CONFIG)
    assert (config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16
            == rewriter_config_pb2.RewriterConfig.ON)
    text = PLATFORM_CONFIG.read_text(encoding="utf-8")
    assert 'key: "tensorflow"' in text and "SavedModelBundleSourceAdapterConfig" in text
    directory, features = tiny_model
    float32 = _session_probabilities(directory, features, config_pb2.ConfigProto())
    _check_close_and_rewritten(float32, _session_probabilities(directory, features, config))
