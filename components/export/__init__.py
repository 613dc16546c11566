"""The exported SavedModel: its signatures (serving_default, predict_text, classification,
transform_features) and the checks that turn bad requests into errors in words."""
