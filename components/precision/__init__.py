"""Numeric precision: the Keras mixed-precision policy to train with, and bf16 scoring of a
float32 SavedModel where the CPU computes bf16."""
