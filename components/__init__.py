"""The code the pipeline runs, one package per idea (each says what it is for).

Layers, highest first (import-linter contracts in pyproject.toml, checked in make test):
training | evaluation -> serving -> export -> model | kernels | text | data ->
precision -> families -> the shared leaf modules features, tensors and file_trees.
`components` never imports `pipeline`. A component's cache key holds the fingerprint of
its module and of every module here that it imports (pipeline.fingerprint).
"""
