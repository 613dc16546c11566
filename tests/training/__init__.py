"""Tests of components.training."""
