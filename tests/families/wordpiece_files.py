"""WordPiece tokenizer files (BERT, DistilBERT, ELECTRA) trained on QQP text, hub layout."""

from __future__ import annotations

from pathlib import Path

_FAST_TOKENIZERS = {"bert": "BertTokenizerFast", "distilbert": "DistilBertTokenizerFast",
                    "electra": "ElectraTokenizerFast"}


def write_tokenizer_files(directory: Path, texts: list[str], model_type: str) -> None:
    """Trains an uncased WordPiece vocabulary on `texts`; saves the family's fast tokenizer.

    The directory gets vocab.txt, tokenizer.json, tokenizer_config.json and
    special_tokens_map.json, as a hub checkpoint has them.
    """
    import transformers  # pylint: disable=import-outside-toplevel
    from tokenizers import BertWordPieceTokenizer  # pylint: disable=import-outside-toplevel

    directory.mkdir(parents=True, exist_ok=True)
    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(
        texts, vocab_size=6000, min_frequency=2, show_progress=False,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    trainer.save_model(str(directory))
    fast = getattr(transformers, _FAST_TOKENIZERS[model_type])
    fast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True).save_pretrained(
        str(directory))
