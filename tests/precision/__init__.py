"""Tests of components.precision."""
