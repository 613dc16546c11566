"""What a run produced, read back from ML Metadata: node results, the outcome, data counts."""
