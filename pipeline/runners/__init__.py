"""Runners: each chooses and configures one TFX orchestrator for `create_pipeline`."""
