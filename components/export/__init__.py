"""The exported SavedModel: its serving signatures (predict_text, classify, serving_default)
and the checks that turn bad requests into errors in words."""
