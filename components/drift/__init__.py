"""Drift between two spans of QQP question pairs, checked before training on the new one.

TFDV compares strings only as categories, which says nothing about free text, so
`metrics` derives numeric features of each pair with the checkpoint's own tokenizer
(tokens per question, truncation, unknown tokens, word overlap, label, near-empty
questions) and lets TFDV measure how far their distributions moved (Jensen-Shannon
divergence), each against its own threshold.
"""
