"""Tests of components.text."""
