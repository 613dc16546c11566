"""Tests of components.serving."""
