"""In-graph tokenizers for every supported family, at exact parity with Hugging Face.

`load_tokenizer(checkpoint_dir)` picks the family's implementation from the
checkpoint's config.json `model_type` (components.families):
- wordpiece: BERT, DistilBERT, ELECTRA (vocab.txt);
- sentencepiece_unigram: ALBERT, DeBERTa-v2/v3 (spiece.model / spm.model);
- byte_level_bpe: RoBERTa (vocab.json + merges.txt).
Each returns a `Tokenizer` (components.tokenization.base) made of TensorFlow and
tensorflow_text ops only; loading a graph holding one needs `import tensorflow_text`.
"""

from __future__ import annotations

import importlib

from components.families import family_of
from components.tokenization.base import PairTemplate, Tokenizer

__all__ = ["PairTemplate", "Tokenizer", "load_tokenizer"]

_MODULES = {
    "wordpiece": "components.tokenization.wordpiece",
    "sentencepiece": "components.tokenization.sentencepiece_unigram",
    "byte_level_bpe": "components.tokenization.byte_level_bpe",
}


def load_tokenizer(checkpoint_dir: str) -> Tokenizer:
    """The in-graph tokenizer of a local checkpoint directory, for its model_type."""
    family = family_of(checkpoint_dir)
    module = importlib.import_module(_MODULES[family.tokenizer])
    return module.load(checkpoint_dir, family.model_type)
