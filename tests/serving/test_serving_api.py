"""The pushed SavedModel as TF Serving sees it: signatures, errors, warm-up, documented requests.

One tiny random BERT (2 layers, hidden 32) is exported and pushed once for the
module, by the Pusher's executor with eval examples, as the pipeline does.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer's ops for loading)
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.export.signatures import CLASSES, CLASSIFY_SIGNATURE
from components.serving import pusher, warmup
from components.serving.layout import SERVED_VERSION_KEY
from tests.conftest import REPO_ROOT, sample_rows

EVAL_PAIRS = 80  # more than the largest warm-up batch (64)
SCORING_SIGNATURES = ("serving_default", "predict_text", CLASSIFY_SIGNATURE)


@dataclasses.dataclass
class Served:
    """A pushed version, the model loaded from it and the eval pairs it was warmed up with."""

    version_dir: Path
    model: tf.Module
    pairs: list[warmup.Pair]
    executor: pusher.Executor
    inputs: dict


def _artifact(kind: type, uri: Path, **properties) -> standard_artifacts.Artifact:
    artifact = kind()
    artifact.uri = str(uri)
    for name, value in properties.items():
        artifact.set_int_custom_property(name, value)
    return artifact


def _write_eval_split(examples_uri: Path, rows: list[list[str]]) -> None:
    """An ExampleGen-like eval split: gzipped TFRecords of raw tf.Examples."""
    split = examples_uri / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data_tfrecord-00000-of-00001.gz"), "GZIP") as writer:
        for row in rows:
            example = warmup.question_example(row[3].encode(), row[4].encode())
            for name, value in (("id", int(row[0])), ("is_duplicate", int(row[5]))):
                example.features.feature[name].int64_list.value.append(value)
            writer.write(example.SerializeToString())


def _push(executor: pusher.Executor, inputs: dict, output: Path
          ) -> standard_artifacts.Artifact:
    pushed = _artifact(standard_artifacts.PushedModel, output)
    destination = json.dumps({"filesystem": {"base_directory": str(output.parent / "serving")}})
    executor.Do(inputs, {"pushed_model": [pushed]}, {"push_destination": destination})
    return pushed


def _transform_graph(checkpoint: Path, output: Path) -> Path:
    """The transform graph of `components.text.preprocessing`, written in place without Beam.

    Transform's preprocessing_fn uses no analyzers, so it needs no data: this is the
    path TFX's Transform takes for such functions, in seconds instead of a Beam run.
    """
    # pylint: disable=import-outside-toplevel
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform import impl_helper
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from components.text.preprocessing import preprocessing_fn

    schema = text_format.Parse((REPO_ROOT / "pipeline" / "schema" / "schema.pbtxt").read_text(),
                               schema_pb2.Schema())
    feature_spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    config = {"checkpoint": str(checkpoint), "max_seq_length": 32}
    impl_helper.analyze_in_place(lambda inputs: preprocessing_fn(inputs, config), False,
                                 feature_spec,
                                 impl_helper.get_type_specs_from_feature_specs(feature_spec),
                                 str(output))
    # As Transform does: the exported signatures parse raw examples with the raw schema.
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema), str(output / "metadata"))
    return output


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    # pylint: disable=import-outside-toplevel
    import tensorflow_transform as tft

    from components.export.signatures import export_serving_model
    from components.families.encoders import load_encoder
    from components.model.classifier import build_classifier
    from fixtures.tiny_bert import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("served")
    checkpoint = make_tiny_checkpoint(root / "tiny-bert")
    transform_graph = _transform_graph(checkpoint, root / "transform_graph")
    model = build_classifier(load_encoder(str(checkpoint)))
    export_serving_model(model, tft.TFTransformOutput(str(transform_graph)),
                         str(root / "model" / "Format-Serving"))
    rows = [line.split("\t") for line in sample_rows("dev.tsv", EVAL_PAIRS)]
    _write_eval_split(root / "examples", rows)
    examples = _artifact(standard_artifacts.Examples, root / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    inputs = {"model": [_artifact(standard_artifacts.Model, root / "model")],
              "model_blessing": [_artifact(standard_artifacts.ModelBlessing, root / "blessing",
                                           blessed=1, **{SERVED_VERSION_KEY: 0})],
              "examples": [examples]}
    executor = pusher.Executor()
    pushed = _push(executor, inputs, root / "pushed-1")
    version_dir = Path(pushed.get_string_custom_property("pushed_destination"))
    return Served(version_dir, tf.saved_model.load(str(version_dir)),
                  [(row[3].encode(), row[4].encode()) for row in rows], executor, inputs)


def _probability_of(served: Served) -> dict[warmup.Pair, float]:
    """Each eval pair's probability, from one direct predict_text call."""
    first, second = zip(*served.pairs)
    probability = served.model.signatures["predict_text"](
        question1=tf.constant(first), question2=tf.constant(second))["probability"].numpy()
    return dict(zip(served.pairs, probability.tolist()))


def _replay(model: tf.Module, record: prediction_log_pb2.PredictionLog
            ) -> tuple[str, list[warmup.Pair], np.ndarray]:
    """Runs a warm-up record through the model: its signature, its pairs and probabilities."""
    if record.HasField("classify_log"):
        request = record.classify_log.request
        examples = list(request.input.example_list.examples)
        scores = model.signatures[request.model_spec.signature_name](inputs=tf.constant(
            [example.SerializeToString() for example in examples]))["scores"]
        pairs = [tuple(example.features.feature[name].bytes_list.value[0]
                       for name in ("question1", "question2")) for example in examples]
        return request.model_spec.signature_name, pairs, scores.numpy()[:, 1]
    request = record.predict_log.request
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    outputs = model.signatures[request.model_spec.signature_name](
        **{name: tf.constant(value) for name, value in inputs.items()})
    if "examples" in inputs:
        pairs = [tuple(tf.train.Example.FromString(serialized).features.feature[name]
                       .bytes_list.value[0] for name in ("question1", "question2"))
                 for serialized in inputs["examples"]]
    else:
        pairs = list(zip(inputs["question1"].tolist(), inputs["question2"].tolist()))
    return request.model_spec.signature_name, pairs, outputs["probability"].numpy()


def test_the_warmup_requests_are_eval_pairs_and_replay_like_direct_calls(served: Served):
    path = served.version_dir / warmup.WARMUP_FILE
    records = [prediction_log_pb2.PredictionLog.FromString(record) for record
               in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]
    assert 0 < len(records) <= warmup.MAX_RECORDS
    expected = _probability_of(served)
    batch_sizes = {name: set() for name in SCORING_SIGNATURES}
    for record in records:
        signature, pairs, probability = _replay(served.model, record)
        batch_sizes[signature].add(len(pairs))
        np.testing.assert_allclose(probability, [expected[pair] for pair in pairs], atol=1e-5)
    assert all(sizes == {1, 2, 8, 16, 64} for sizes in batch_sizes.values()), batch_sizes
    # The same model and eval data: the same files, so it is not pushed again.
    blessing = _artifact(standard_artifacts.ModelBlessing, served.version_dir.parent / "blessing",
                         blessed=1, **{SERVED_VERSION_KEY: int(served.version_dir.name)})
    again = _push(served.executor, {**served.inputs, "model_blessing": [blessing]},
                  served.version_dir.parent.parent / "pushed-2")
    assert again.get_int_custom_property("already_served") == 1
    assert again.get_string_custom_property("pushed_destination") == str(served.version_dir)


def test_the_warmup_batches_span_short_to_long_pairs(served: Served):
    batches = warmup.pick_batches(served.pairs)
    lengths = sorted(len(q1) + len(q2) for q1, q2 in served.pairs)
    singles = [len(batch[0][0]) + len(batch[0][1]) for batch in batches if len(batch) == 1]
    assert min(singles) == lengths[0] and max(singles) == lengths[-1]
    assert warmup.warmup_file(served.pairs[::-1]) == warmup.warmup_file(served.pairs)
    assert warmup.pick_batches(served.pairs[:3]) == warmup.pick_batches(served.pairs[:3], (1, 2, 3))


def test_classify_scores_are_serving_defaults_probability(served: Served):
    examples = tf.constant([warmup.question_example(*pair).SerializeToString()
                            for pair in served.pairs[:20]])
    saved_model = saved_model_pb2.SavedModel.FromString(
        (served.version_dir / "saved_model.pb").read_bytes())
    signature = saved_model.meta_graphs[0].signature_def[CLASSIFY_SIGNATURE]
    assert signature.method_name == tf.saved_model.CLASSIFY_METHOD_NAME
    assert set(signature.inputs) == {"inputs"} and set(signature.outputs) == {"classes", "scores"}
    classified = served.model.signatures[CLASSIFY_SIGNATURE](inputs=examples)
    probability = served.model.signatures["serving_default"](examples=examples)["probability"]
    np.testing.assert_allclose(classified["scores"].numpy()[:, 1], probability.numpy(), atol=1e-6)
    np.testing.assert_allclose(classified["scores"].numpy().sum(axis=1), 1, atol=1e-6)
    assert classified["classes"].numpy().tolist() == [list(CLASSES)] * 20


def _example(**features) -> bytes:
    """A serialized tf.Example with these features (str: bytes_list, int, float), as TF
    Serving's REST API turns a JSON example into one."""
    example = tf.train.Example()
    for name, value in features.items():
        feature = example.features.feature[name]
        if isinstance(value, list):
            feature.bytes_list.value.extend(text.encode() for text in value)
        elif isinstance(value, str):
            feature.bytes_list.value.append(value.encode())
        elif isinstance(value, int):
            feature.int64_list.value.append(value)
        else:
            feature.float_list.value.append(value)
    return example.SerializeToString()


GOOD = _example(question1="How do I learn Python?", question2="How can I learn Python?")
BAD_EXAMPLES = {
    "tf.Example 1: question2 holds 0 strings; every tf.Example needs question1 and question2":
        [GOOD, _example(question1="Why?")],
    "Key: question1, Index: 0.  Data types don't match. Expected type: string, Actual type: "
    "int64": [_example(question1=3, question2="Why?"), GOOD],
    "Key: question2, Index: 2.  Data types don't match. Expected type: string, Actual type: "
    "float": [GOOD, GOOD, _example(question1="Why?", question2=0.5)],
    "tf.Example 0: question1 holds 2 strings; every tf.Example needs question1 and question2, "
    "each a bytes_list holding one UTF-8 string": [_example(question1=["a", "b"], question2="c")],
}


@pytest.mark.parametrize("signature,input_name", [("serving_default", "examples"),
                                                  (CLASSIFY_SIGNATURE, "inputs")])
@pytest.mark.parametrize("message", BAD_EXAMPLES)
def test_a_bad_example_is_refused_naming_the_feature(served: Served, signature: str,
                                                     input_name: str, message: str):
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        served.model.signatures[signature](**{input_name: tf.constant(BAD_EXAMPLES[message])})


def test_questions_of_different_counts_are_refused_naming_both(served: Served):
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(
            "question1 has 3 strings and question2 has 2; give one question2 per question1")):
        served.model.signatures["predict_text"](question1=tf.constant(["a", "b", "c"]),
                                                question2=tf.constant(["a", "b"]))


def test_empty_batches_give_empty_outputs(served: Served):
    empty = tf.constant([], tf.string)
    calls = {"serving_default": {"examples": empty}, CLASSIFY_SIGNATURE: {"inputs": empty},
             "predict_text": {"question1": empty, "question2": empty},
             "transform_features": {"examples": empty}}
    for signature, inputs in calls.items():
        outputs = served.model.signatures[signature](**inputs)
        assert outputs and all(value.shape[0] == 0 for value in outputs.values()), signature


def _documented_exchanges() -> list[tuple[dict, dict]]:
    """The (request, response) JSON bodies of docs/serving.md's "Signatures"."""
    document = (REPO_ROOT / "docs" / "serving.md").read_text(encoding="utf-8")
    section = document.split("\n## Signatures\n", 1)[1].split("\n## ", 1)[0]
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]
    assert len(blocks) % 2 == 0 and all("signature_name" in block for block in blocks[::2])
    return list(zip(blocks[::2], blocks[1::2]))


def _rest_call(model: tf.Module, body: dict) -> dict:
    """A REST request body run through the model, answered in TF Serving's REST format."""
    signature = model.signatures[body["signature_name"]]
    if "examples" in body:  # :classify
        outputs = signature(inputs=tf.constant([_example(**example)
                                                for example in body["examples"]]))
        return {"result": [[[name.decode(), score] for name, score in zip(names, scores)]
                           for names, scores in zip(outputs["classes"].numpy().tolist(),
                                                    outputs["scores"].numpy().tolist())]}
    inputs = {name: [base64.b64decode(value["b64"]) if isinstance(value, dict) else value
                     for value in values] for name, values in body["inputs"].items()}
    assert set(inputs) == set(signature.structured_input_signature[1])
    outputs = signature(**{name: tf.constant(values) for name, values in inputs.items()})
    return {"outputs": {name: value.numpy().tolist() for name, value in outputs.items()}}


def _shape(value):
    """The nesting of lists and dict keys, with each leaf's type (int and float apart)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value)


def test_the_documented_requests_run_and_answer_as_shown(served: Served):
    exchanges = _documented_exchanges()
    assert {request["signature_name"] for request, _ in exchanges} == set(SCORING_SIGNATURES)
    for request, response in exchanges:
        if "error" in response:
            with pytest.raises(tf.errors.InvalidArgumentError) as raised:
                _rest_call(served.model, request)
            assert response["error"] in str(raised.value)
            continue
        assert _shape(_rest_call(served.model, request)) == _shape(response), request
        outputs = response.get("outputs", {})  # the documented numbers agree with each other
        for probability, label in zip(outputs.get("probability", []), outputs.get("label", [])):
            assert label == int(probability >= 0.5)
        for (not_duplicate, low), (duplicate, high) in response.get("result", []):
            assert (not_duplicate, duplicate) == ("0", "1") and low + high == pytest.approx(1)
