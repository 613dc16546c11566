"""End-to-end tests: the whole pipeline on both runners, the compiled spec and the notebook.

The slow files: `make test-slow` runs them whole.
"""
