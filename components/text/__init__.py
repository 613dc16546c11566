"""Text to model inputs: Transform's `preprocessing_fn` and the in-graph tokenizers of
every family (`tokenization/`), at exact parity with Hugging Face."""
