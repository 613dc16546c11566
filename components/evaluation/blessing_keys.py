"""Custom property keys of the gate's ModelBlessing artifacts, free of TFX (the CLI reads them).

The served version a blessing was gated against is `components.serving.layout.SERVED_VERSION_KEY`.
"""

# Set by the ServedModelEvaluator when no model was served to compare with.
NO_BASELINE_KEY = "no_baseline"
