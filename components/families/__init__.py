"""The Hugging Face model families: the family table (config.json `model_type` -> what the
pipeline needs), finding and checking a checkpoint, loading its TF encoder, and the
encoder classes whose blocks the kernels replace."""
