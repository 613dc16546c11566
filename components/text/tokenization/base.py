"""The interface every in-graph tokenizer family implements, and the pair templates.

A `Tokenizer` turns raw text into a checkpoint's token ids with TensorFlow and
tensorflow_text ops only; its `PairTemplate` says which special tokens frame one
question or a pair, as the checkpoint's Hugging Face post-processor does. The
truncation (`longest_first`) and assembly here are shared by all families.
"""

from __future__ import annotations

import abc
import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class PairTemplate:
    """Special-token ids around segments, like Hugging Face's post-processors.

    One question: start + A + end. A pair: start + A + middle + B + end.
    Token type ids are the segment index: 0 for start + A + middle, 1 for B + end
    (BERT: [CLS] A [SEP] | B [SEP]; RoBERTa: <s> A </s></s> | B </s>). For families whose
    tokenizer returns token_type_ids they are those; RoBERTa's and DistilBERT's return
    none (their encoders take none) and the pair order swap (components.model.pair_order)
    reads the segments from them.
    """

    start: tuple[int, ...]
    middle: tuple[int, ...]
    end: tuple[int, ...]
    pad_id: int = 0

    @property
    def pair_specials(self) -> int:
        """Special tokens in a pair encoding."""
        return len(self.start) + len(self.middle) + len(self.end)

    @property
    def single_specials(self) -> int:
        """Special tokens in a one-question encoding."""
        return len(self.start) + len(self.end)


class Tokenizer(tf.Module, abc.ABC):
    """A checkpoint's tokenizer as TensorFlow ops (a tf.Module: its tables are tracked).

    Build it where it is used (inside a Transform `preprocessing_fn`, or as an
    attribute of the tf.Module being saved), so its lookup tables belong to that graph.
    """

    template: PairTemplate

    @abc.abstractmethod
    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[batch] tf.string -> [batch, (tokens)] int64 ids, without special tokens."""

    @tf.autograph.experimental.do_not_convert
    def tokenize_questions(self, question1: tf.Tensor, question2: tf.Tensor
                           ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """Ids of each question ([batch] or [batch, 1] strings), tokenized in one pass."""
        question1, question2 = tf.reshape(question1, [-1]), tf.reshape(question2, [-1])
        ids = self.tokenize(tf.concat([question1, question2], axis=0))
        batch_size = tf.shape(question1, out_type=tf.int64)[0]
        return ids[:batch_size], ids[batch_size:]

    def encode_pairs(self, question1: tf.Tensor, question2: tf.Tensor, max_length: int
                     ) -> dict[str, tf.RaggedTensor]:
        """Like the Hugging Face fast tokenizer's (q1s, q2s, truncation=True, max_length=L).

        Returns ragged int64 'input_ids', 'attention_mask', 'token_type_ids' of shape
        [batch, (tokens)], not padded. An empty question2 still yields a pair, as in
        Hugging Face's batched call.
        """
        ids1, ids2 = self.tokenize_questions(question1, question2)
        return assemble_pair(ids1, ids2, self.template, max_length)


def _check_max_length(max_length: int, special_tokens: int) -> None:
    if max_length < special_tokens:
        raise ValueError(f"max_length must leave room for {special_tokens} special tokens, "
                         f"got {max_length}")


@tf.autograph.experimental.do_not_convert
def truncation_lengths(
    n1: tf.Tensor, n2: tf.Tensor, budget: int | tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Kept lengths under Hugging Face `longest_first` (tokenizers truncation.rs).

    budget is max_length minus the number of special tokens.
    """
    budget = tf.cast(budget, n1.dtype)
    shorter = tf.minimum(n1, n2)
    half, odd = budget // 2, budget % 2
    fits = n1 + n2 <= budget
    shorter_fits = 2 * shorter <= budget  # keep the shorter one, cut the longer one
    first_cut = tf.where(n1 > n2, budget - n2, n1)
    second_cut = tf.where(n1 > n2, n2, budget - n1)
    first_half = tf.where(n1 > n2, half + odd, half)  # the longer one gets the odd token
    second_half = tf.where(n1 > n2, half, half + odd)
    keep1 = tf.where(fits, n1, tf.where(shorter_fits, first_cut, first_half))
    keep2 = tf.where(fits, n2, tf.where(shorter_fits, second_cut, second_half))
    return keep1, keep2


def keep_first(ids: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
    """Keeps the first lengths[i] ids of each row i of a 2-D ragged tensor."""
    rows = ids.value_rowids()
    positions = tf.range(tf.size(rows, out_type=tf.int64)) - tf.gather(ids.row_starts(), rows)
    keep = positions < tf.gather(lengths, rows)
    return tf.RaggedTensor.from_value_rowids(
        tf.boolean_mask(ids.values, keep), tf.boolean_mask(rows, keep), ids.nrows(), validate=False)


def _constant_rows(ids: tuple[int, ...], rows: tf.Tensor) -> tf.RaggedTensor:
    """`rows` copies of the id tuple, as a [rows, len(ids)] ragged int64 tensor."""
    values = tf.tile(tf.constant(ids, tf.int64, shape=[1, len(ids)]), tf.stack([rows, 1]))
    return tf.RaggedTensor.from_tensor(values)


def _segments(parts: list[tuple[tf.RaggedTensor | tuple[int, ...], int]], rows: tf.Tensor
              ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Concatenates (ids, type id) parts row-wise; returns input ids and token type ids."""
    pieces, types = [], []
    for part, type_id in parts:
        if isinstance(part, tuple):
            if not part:
                continue
            part = _constant_rows(part, rows)
        pieces.append(part)
        types.append(tf.ones_like(part) * type_id)
    return tf.concat(pieces, axis=1), tf.concat(types, axis=1)


@tf.autograph.experimental.do_not_convert
def assemble_pair(ids1: tf.RaggedTensor, ids2: tf.RaggedTensor, template: PairTemplate,
                  max_length: int) -> dict[str, tf.RaggedTensor]:
    """start + ids1 + middle + ids2 + end, truncated `longest_first` to max_length tokens.

    Returns ragged int64 'input_ids', 'attention_mask', 'token_type_ids'.
    """
    _check_max_length(max_length, template.pair_specials)
    keep1, keep2 = truncation_lengths(ids1.row_lengths(), ids2.row_lengths(),
                                      max_length - template.pair_specials)
    rows = ids1.nrows()
    input_ids, token_type_ids = _segments(
        [(template.start, 0), (keep_first(ids1, keep1), 0), (template.middle, 0),
         (keep_first(ids2, keep2), 1), (template.end, 1)], rows)
    return {"input_ids": input_ids, "attention_mask": tf.ones_like(input_ids),
            "token_type_ids": token_type_ids}


@tf.autograph.experimental.do_not_convert
def assemble_single(ids: tf.RaggedTensor, template: PairTemplate, max_length: int
                    ) -> dict[str, tf.RaggedTensor]:
    """start + ids + end, truncated to max_length: the fast tokenizer(q, truncation=True).

    Returns ragged int64 'input_ids' and 'attention_mask'.
    """
    _check_max_length(max_length, template.single_specials)
    keep = tf.minimum(ids.row_lengths(), tf.cast(max_length - template.single_specials, tf.int64))
    input_ids, _ = _segments([(template.start, 0), (keep_first(ids, keep), 0),
                              (template.end, 0)], ids.nrows())
    return {"input_ids": input_ids, "attention_mask": tf.ones_like(input_ids)}
