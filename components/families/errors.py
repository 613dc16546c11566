"""The error of a checkpoint that cannot be used (shared by finding, assembling and loading)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing files or weights that do not fit its config."""
