"""Tests of components.drift."""
