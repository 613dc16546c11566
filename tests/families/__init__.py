"""Tests of components.families."""
