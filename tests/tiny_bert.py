"""A tiny random BERT checkpoint (2 layers, hidden 32) with the real uncased vocabulary."""

import shutil
from pathlib import Path

from components.checkpoint import DEFAULT_CHECKPOINT, resolve_checkpoint


def make_tiny_checkpoint(directory: Path, seed: int = 0) -> Path:
    """Writes config.json, vocab.txt, tokenizer_config.json and random tf_model.h5."""
    import tf_keras as keras  # pylint: disable=import-outside-toplevel
    from transformers import BertConfig, TFBertModel  # pylint: disable=import-outside-toplevel

    source = Path(resolve_checkpoint(DEFAULT_CHECKPOINT))
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(source / name, directory / name)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=512)
    # Python's, NumPy's and TensorFlow's seeds: unseeded Keras initializers draw their
    # seeds from Python's `random`, so tf.random.set_seed alone varies between processes.
    keras.utils.set_random_seed(seed)
    model = TFBertModel(config)
    model(model.dummy_inputs)
    model.save_pretrained(str(directory))
    return directory
