"""Faster encoder blocks: swapping Keras layer calls, XLA-fused training kernels, and the
serving graph (weights as constants, fusable products)."""
