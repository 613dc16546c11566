"""Tests of components.model."""
