"""In-graph tokenizers for every supported family, at exact parity with Hugging Face.

`load_tokenizer(checkpoint_dir)` picks the family's implementation from the
checkpoint's config.json `model_type` (components.families.table):
- wordpiece: BERT, DistilBERT, ELECTRA, MPNet (vocab.txt);
- sentencepiece_unigram: ALBERT, DeBERTa-v2/v3 (spiece.model / spm.model);
- byte_level_bpe: RoBERTa (vocab.json + merges.txt).
Each returns a `Tokenizer` (components.text.tokenization.base) made of TensorFlow and
tensorflow_text ops only; loading a graph holding one needs `import tensorflow_text`.
"""

from __future__ import annotations

from components.families.table import family_of
from components.text.tokenization import byte_level_bpe, sentencepiece_unigram, wordpiece
from components.text.tokenization.base import PairTemplate, Tokenizer

__all__ = ["PairTemplate", "Tokenizer", "load_tokenizer"]

# Static imports, so that the code fingerprint of Transform (pipeline.fingerprint) covers
# every algorithm: an edited tokenizer re-runs Transform and everything after it.
_MODULES = {
    "wordpiece": wordpiece,
    "sentencepiece": sentencepiece_unigram,
    "byte_level_bpe": byte_level_bpe,
}


def load_tokenizer(checkpoint_dir: str) -> Tokenizer:
    """The in-graph tokenizer of a local checkpoint directory, for its model_type."""
    family = family_of(checkpoint_dir)
    return _MODULES[family.tokenizer].load(checkpoint_dir, family.model_type)
