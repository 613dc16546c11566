"""The code the pipeline runs: one package per idea, each a unit of the cache.

Layers, highest first (checked by import-linter, see pyproject.toml):
training | evaluation -> serving -> export -> model | kernels | text | data ->
precision -> families; features and tensors are shared leaf modules.
`components` never imports `pipeline`.
"""
