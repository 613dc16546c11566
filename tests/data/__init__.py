"""Tests of components.data."""
