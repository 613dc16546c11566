"""The Keras pair classifier on top of an encoder, and how pair order is trained and scored."""
