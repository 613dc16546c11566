"""The two models: a tiny random BERT classifier learns; the cosine scorer scores as defined."""

import numpy as np
import pytest
import tensorflow as tf
from transformers import BertConfig, TFBertModel

from components.families.checkpoint import CheckpointError
from components.model.classifier import (COSINE_TO_LOGIT, MaskedMeanPooling, build_classifier,
                                         build_cosine_scorer)
from components.training.hyperparameters import Hyperparameters
from components.training.not_fine_tuned import calibrate
from components.training.trainer import compile_classifier


def _tiny_encoder() -> TFBertModel:
    tf.random.set_seed(0)
    return TFBertModel(BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64))


def _batch(size: int = 32, length: int = 12):
    rng = np.random.default_rng(0)
    input_ids = rng.integers(5, 200, size=(size, length)).astype(np.int32)
    labels = (rng.random(size) < 0.5).astype(np.float32)
    input_ids[labels == 1, 1] = 3  # a learnable signal: token 3 at position 1
    features = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids),
                "token_type_ids": np.zeros_like(input_ids)}
    return features, labels


def test_tiny_bert_loss_falls_in_a_few_steps():
    model = build_classifier(_tiny_encoder())
    compile_classifier(model, Hyperparameters(learning_rate=1e-3, warmup_ratio=0.0), 30)
    model.run_eagerly = True  # 30 tiny steps: tracing the train step would take longer
    features, labels = _batch()
    initial_loss = float(model.evaluate(features, labels, verbose=0)[0])
    model.fit(tf.data.Dataset.from_tensors((features, labels)).repeat(), epochs=1,
              steps_per_epoch=30, verbose=0)
    final_loss = float(model.evaluate(features, labels, verbose=0)[0])
    assert final_loss < 0.5 < initial_loss, (initial_loss, final_loss)


def test_mean_pooling_ignores_padding():
    hidden = tf.constant([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    pooled = MaskedMeanPooling()(hidden, tf.constant([[1, 1, 0]]))
    np.testing.assert_allclose(pooled.numpy(), [[2.0, 3.0]])


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_classifier(_tiny_encoder(), pooling="max")


def _question_features(first: list[list[int]], second: list[list[int]]):
    def pad(rows):
        ids = tf.ragged.constant(rows, dtype=tf.int32).to_tensor()
        return ids, tf.cast(ids > 0, tf.int32)

    (ids1, mask1), (ids2, mask2) = pad(first), pad(second)
    return {"question1_input_ids": ids1, "question1_attention_mask": mask1,
            "question2_input_ids": ids2, "question2_attention_mask": mask2}


def test_cosine_scorer_encodes_each_question_alone():
    scorer, cosine = build_cosine_scorer(_tiny_encoder())
    scorer.get_layer(COSINE_TO_LOGIT).set_weights([np.array([[10.0]]), np.array([-5.0])])
    features = _question_features([[2, 7, 9, 3], [2, 7, 3]], [[2, 7, 9, 3], [2, 50, 60, 70, 3]])
    cosines = cosine(features).numpy()
    assert cosines[0] == pytest.approx(1.0, abs=1e-5)  # the same question twice
    assert -1.0 <= cosines[1] < 1.0 - 1e-4
    np.testing.assert_allclose(scorer(features).numpy(), 10.0 * cosines - 5.0, rtol=1e-5)
    # Padding changes nothing: question 1 of pair 2 alone, without the longer rows.
    alone = cosine(_question_features([[2, 7, 3]], [[2, 50, 60, 70, 3]])).numpy()
    np.testing.assert_allclose(alone, cosines[1:], atol=1e-5)
    # Nothing of the encoder is trainable: only the 1x1 map has weights to set.
    assert len(scorer.trainable_weights) == 2


def test_an_encoder_with_broken_weights_gives_no_not_fine_tuned_model():
    encoder = _tiny_encoder()
    _, cosine = build_cosine_scorer(encoder)
    features = _question_features([[2, 7, 9, 3], [2, 7, 3]], [[2, 8, 3], [2, 50, 60, 3]])
    assert np.isfinite(cosine(features).numpy()).all()
    layer_norm = encoder.bert.embeddings.LayerNorm
    layer_norm.gamma.assign(tf.fill(layer_norm.gamma.shape, np.nan))  # a broken checkpoint
    cosines = cosine(features).numpy()
    assert np.isnan(cosines).all()
    with pytest.raises(CheckpointError, match="^/ckpt/broken: the pretrained encoder gives NaN"):
        calibrate(cosines, np.array([1, 0]), "/ckpt/broken")
