"""Both question orders: the swap equals tokenizing (q2, q1); the exported score is symmetric."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from transformers import BertConfig, TFBertModel

from components.families.checkpoint import DEFAULT_CHECKPOINT, resolve_checkpoint
from components.families.table import FAMILIES
from components.features import PAIR_FEATURES
from components.model.classifier import build_classifier
from components.model.pair_order import RandomPairOrder, order_averaged, swap_pair_order
from components.text.tokenization import Tokenizer, load_tokenizer
from fixtures import families

FIRST = ["How do I learn Python quickly?", "", "Is it raining?", "a b c d e f g h i j k"]
SECOND = ["What is the fastest way to learn Python?", "Why?", "", "x"]


def _padded_pairs(first: list[str], second: list[str], max_length: int = 128,
                  tokenizer: Tokenizer | None = None) -> dict[str, np.ndarray]:
    tokenizer = tokenizer or load_tokenizer(resolve_checkpoint(DEFAULT_CHECKPOINT))
    pair = tokenizer.encode_pairs(tf.constant(first), tf.constant(second), max_length)
    return {name: pair[name].to_tensor().numpy().astype(np.int32) for name in PAIR_FEATURES}


@pytest.fixture(scope="module")
def two_separator_dirs(tmp_path_factory) -> dict[str, Path]:
    """RoBERTa's and MPNet's tokenizer files (<s> a </s></s> b </s>: two separators)
    trained on QQP text."""
    directories = {}
    for model_type in ("roberta", "mpnet"):
        directories[model_type] = tmp_path_factory.mktemp(model_type)
        families.write_tokenizer_files(directories[model_type], families.training_texts()[:4000],
                                       model_type)
        families.write_model_type(directories[model_type], model_type)
    return directories


@pytest.mark.parametrize("model_type", ["bert", "roberta", "mpnet"])
def test_swap_equals_tokenizing_the_other_order(model_type: str,
                                                two_separator_dirs: dict[str, Path]):
    tokenizer = (load_tokenizer(str(two_separator_dirs[model_type]))
                 if model_type in two_separator_dirs else None)
    separators = FAMILIES[model_type].pair_separators
    assert len((tokenizer or load_tokenizer(resolve_checkpoint(DEFAULT_CHECKPOINT)))
               .template.middle) == separators
    given = _padded_pairs(FIRST, SECOND, tokenizer=tokenizer)
    expected = _padded_pairs(SECOND, FIRST, tokenizer=tokenizer)
    swapped = {name: value.numpy() for name, value in swap_pair_order(given, separators).items()}
    for name in PAIR_FEATURES:
        np.testing.assert_array_equal(swapped[name], expected[name], err_msg=name)
    again = swap_pair_order(swapped, separators)  # swapping twice gives the pair back
    for name in PAIR_FEATURES:
        np.testing.assert_array_equal(again[name].numpy(), given[name], err_msg=name)


def _tiny_classifier(random_pair_order: bool = False):
    tf.random.set_seed(0)
    encoder = TFBertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64))
    return build_classifier(encoder, random_pair_order=random_pair_order)


def test_exported_score_is_the_mean_of_both_orders_and_symmetric():
    classifier = _tiny_classifier()
    given, other = _padded_pairs(FIRST, SECOND), _padded_pairs(SECOND, FIRST)
    averaged = order_averaged(classifier)
    expected = (classifier(given).numpy() + classifier(other).numpy()) / 2
    np.testing.assert_allclose(averaged(given).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(averaged(other).numpy(), averaged(given).numpy(), atol=1e-5)
    assert not np.allclose(classifier(given).numpy(), classifier(other).numpy(), atol=1e-4)


def test_random_order_swaps_some_pairs_in_training_only():
    layer = RandomPairOrder()
    given = _padded_pairs(FIRST * 8, SECOND * 8)
    swapped = {name: value.numpy() for name, value in swap_pair_order(given).items()}
    tf.random.set_seed(1)
    trained_on = layer(given, training=True)
    kept = np.all(trained_on["input_ids"].numpy() == given["input_ids"], axis=1)
    turned = np.all(trained_on["input_ids"].numpy() == swapped["input_ids"], axis=1)
    assert np.all(kept | turned) and kept.sum() > 0 and (turned & ~kept).sum() > 0
    for name in PAIR_FEATURES:  # a row is swapped in all its features or in none
        row_swapped = np.all(trained_on[name].numpy() == swapped[name], axis=1)
        np.testing.assert_array_equal(row_swapped | kept, np.ones_like(kept))
    inferred = layer(given, training=False)
    np.testing.assert_array_equal(inferred["input_ids"].numpy(), given["input_ids"])
