"""Every supported family through Transform, both Trainers, export and `predict_text`.

Each family's checkpoint is tiny and random, with tokenizer files trained on QQP
questions (fixtures.families). BERT goes through the whole pipeline in
test_spans_e2e.py; here each family's tokenizer runs inside tf.Transform, both
Trainers' run_fn train and export, and the exported SavedModels are called on raw
text. `make test` leaves them all to `make test-slow` (about two minutes of training
and export per family; the 10-minute budget of `make test` has no room for them):
each tokenizer algorithm's parity and SavedModel round trip stay in `make test`
(tests/text/), and BERT's whole pipeline in test_spans_e2e.py.
`benchmarks/families.py` runs every family through the whole pipeline.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizers' ops for loading)
from tensorflow.core.protobuf import saved_model_pb2

from components.families.table import FAMILIES
from components.training import not_fine_tuned, trainer
from components.training.hyperparameters import Hyperparameters
from fixtures import families
from tests.transformed import transform_sample

# Every family here runs in `make test-slow` only (see the module docstring).
IN_TEST_SLOW = {"distilbert", "electra", "deberta-v2", "albert", "roberta", "mpnet"}
FAMILIES_HERE = [pytest.param(name, marks=[pytest.mark.slow] if name in IN_TEST_SLOW else [])
                 for name in families.FAMILY_TYPES if name != "bert"]
PAIRS = 24
MAX_SEQ_LENGTH = 24
PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
# A tensorflow-text op each family's exported tokenizer runs (so the op scan sees it).
TEXT_OPS = {"wordpiece": "WordpieceTokenizeWithOffsets",
            "sentencepiece": "SentencepieceTokenizeOp", "byte_level_bpe": "RegexSplitWithOffsets"}


def _fn_args(transformed, output: Path) -> types.SimpleNamespace:
    hparams = Hyperparameters(checkpoint=str(transformed.checkpoint), epochs=1, batch_size=16,
                              learning_rate=1e-3, warmup_ratio=0.0, mixed_precision="none")
    return types.SimpleNamespace(
        train_files=[transformed.train_files], transform_output=str(transformed.transform_output),
        model_run_dir=str(output / "model_run"), serving_model_dir=str(output / "serving"),
        custom_config=hparams.to_custom_config(), base_model=None)


def _op_types(saved_model_dir: Path) -> set[str]:
    """Every op type in a SavedModel's graph and function library."""
    saved_model = saved_model_pb2.SavedModel.FromString(
        (saved_model_dir / "saved_model.pb").read_bytes())
    graph = saved_model.meta_graphs[0].graph_def
    nodes = [*graph.node, *(node for function in graph.library.function
                            for node in function.node_def)]
    return {node.op for node in nodes}


def _examples(first: list[str], second: list[str]) -> tf.Tensor:
    """Serialized raw tf.Examples of the pairs (label 0: transform_features parses it)."""
    def example(q1: str, q2: str) -> bytes:
        feature = {name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
                   for name, text in (("question1", q1), ("question2", q2))}
        feature["is_duplicate"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    return tf.constant([example(q1, q2) for q1, q2 in zip(first, second)])


@pytest.mark.parametrize("model_type", FAMILIES_HERE)
def test_family_trains_exports_and_serves_raw_text(model_type: str, tmp_path: Path, monkeypatch):
    compile_classifier = trainer.compile_classifier

    def eager_compile_classifier(model, hparams, total_steps):
        compile_classifier(model, hparams, total_steps)
        model.run_eagerly = True  # two tiny steps: tracing them would take longer

    monkeypatch.setattr(trainer, "compile_classifier", eager_compile_classifier)
    checkpoint = families.make_family_checkpoint(tmp_path / model_type, model_type)
    transformed = transform_sample(tmp_path, checkpoint, PAIRS, MAX_SEQ_LENGTH)
    trainer.run_fn(_fn_args(transformed, tmp_path / "Trainer"))
    not_fine_tuned.run_fn(_fn_args(transformed, tmp_path / "NotFineTunedModel"))

    first, second = [row[3] for row in transformed.rows], [row[4] for row in transformed.rows]
    reference = families.hf_tokenizer(checkpoint)(first, second, truncation=True,
                                                  max_length=MAX_SEQ_LENGTH)
    for name in ("Trainer", "NotFineTunedModel"):
        # TF Serving runs core TensorFlow ops and tensorflow-text's, never Python.
        op_types = _op_types(tmp_path / name / "serving")
        assert TEXT_OPS[FAMILIES[model_type].tokenizer] in op_types
        assert not op_types & PYTHON_OPS
        model = tf.saved_model.load(str(tmp_path / name / "serving"))
        text = model.signatures["predict_text"](question1=tf.constant(first),
                                                question2=tf.constant(second))
        probability = text["probability"].numpy()
        assert probability.shape == (PAIRS,) and np.all((probability > 0) & (probability < 1))
        assert np.ptp(probability) > 0, (model_type, name)  # the pairs are told apart
        np.testing.assert_array_equal(text["label"].numpy(), probability >= 0.5)
    # Both exports share the transform graph and the signatures' code: checked once.
    features = model.signatures["transform_features"](examples=_examples(first, second))
    ids = [[token for token, mask in zip(row, masks) if mask]
           for row, masks in zip(features["input_ids"].numpy().tolist(),
                                 features["attention_mask"].numpy().tolist())]
    assert ids == reference["input_ids"], model_type  # the exported tokenizer
    examples = model.signatures["serving_default"](examples=_examples(first, second))
    np.testing.assert_allclose(examples["probability"].numpy(), probability, atol=1e-6)
