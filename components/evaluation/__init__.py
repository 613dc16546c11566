"""The gate: TFMA Evaluators against the not-fine-tuned and the served model, the served
model's snapshot, their eval configs, blessings, and the BlessingGate that joins them."""
