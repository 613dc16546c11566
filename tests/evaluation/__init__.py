"""Tests of components.evaluation."""
