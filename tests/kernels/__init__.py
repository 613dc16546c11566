"""Tests of components.kernels."""
