"""The precision settings a run may ask for, free of TensorFlow (the CLI and config read them)."""

# Keras mixed-precision settings of the Trainer (components.precision.keras_policy).
MIXED_PRECISION_POLICIES = ("auto", "none", "mixed_float16", "mixed_bfloat16")
# Precisions of scoring with an exported model (components.precision.scoring).
SCORING_PRECISIONS = ("auto", "float32", "bfloat16")
