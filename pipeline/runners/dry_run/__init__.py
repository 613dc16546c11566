"""A local dry run of a compiled Vertex AI / KFP v2 spec: each task executed on this machine
in dependency order, with the spec's own parameters (`qqp-tfx run-compiled`)."""
