"""preprocessing_fn on a batch shaped like Transform's inputs."""

import tensorflow as tf

from components.families.checkpoint import DEFAULT_CHECKPOINT
from components.features import OVERLAP_BUCKETS
from components.text.preprocessing import preprocessing_fn, word_overlap_bucket


def test_preprocessing_fn_outputs():
    inputs = {"question1": tf.constant([["How do I learn Python?"], ["Why?"]]),
              "question2": tf.constant([["How can I learn Python?"], [""]]),
              "is_duplicate": tf.constant([[1], [0]], tf.int64),
              "id": tf.constant([[1], [2]], tf.int64)}
    outputs = tf.function(preprocessing_fn)(
        inputs, {"checkpoint": DEFAULT_CHECKPOINT, "max_seq_length": 8})
    assert set(outputs) == {"input_ids", "attention_mask", "token_type_ids", "is_duplicate",
                            "word_overlap", "question1_input_ids", "question1_attention_mask",
                            "question2_input_ids", "question2_attention_mask"}
    # Each question alone, as BertTokenizerFast(q, truncation=True, max_length=8) gives it.
    assert outputs["question1_input_ids"][1].numpy().tolist() == [101, 2339, 1029, 102]
    assert outputs["question2_input_ids"][1].numpy().tolist() == [101, 102]
    assert outputs["question1_input_ids"].row_lengths().numpy().tolist() == [8, 4]
    assert outputs["question1_attention_mask"][0].numpy().tolist() == [1] * 8
    assert outputs["input_ids"].row_lengths().numpy().tolist() == [8, 5]  # truncated to 8
    # Like BertTokenizerFast's batched call: [CLS] why ? [SEP] [SEP] for an empty question2.
    assert outputs["input_ids"][1].numpy().tolist() == [101, 2339, 1029, 102, 102]
    assert outputs["token_type_ids"][1].numpy().tolist() == [0, 0, 0, 0, 1]
    assert outputs["is_duplicate"].numpy().tolist() == [1, 0]
    assert outputs["word_overlap"].shape.rank == 1


def test_word_overlap_buckets():
    buckets = word_overlap_bucket(
        tf.constant(["How do I learn Python?", "a b c d", "", "Same"]),
        tf.constant(["how do i learn python", "a e f g h i j k", "x", "different"]))
    assert buckets.numpy().tolist() == [OVERLAP_BUCKETS[3].encode(), OVERLAP_BUCKETS[0].encode(),
                                        OVERLAP_BUCKETS[0].encode(), OVERLAP_BUCKETS[0].encode()]
