"""Tests of components.export."""
