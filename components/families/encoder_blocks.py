"""Which blocks of the families' Keras encoders the training kernels and the serving graph
rewrite (components.kernels.training, components.kernels.serving_graph).

Both keep the arithmetic and change how TensorFlow is asked to compute it; they find
the blocks by these names, so a family whose blocks differ keeps its own code.
"""

from __future__ import annotations

# (Dense layer, activation) attributes of the families' feed-forward blocks:
# BERT, RoBERTa, ELECTRA, MPNet, DeBERTa-v2 (`*Intermediate`); DistilBERT (`TFFFN`); ALBERT
# (`TFAlbertLayer`).
FEED_FORWARD_ACTIVATIONS = (("dense", "intermediate_act_fn"), ("lin1", "activation"),
                            ("ffn", "activation"))

# Output blocks whose call is LayerNorm(dropout(dense(hidden_states)) + input_tensor),
# the same code in each (tests/kernels/test_training_kernels.py compares their sources).
RESIDUAL_NORM_BLOCKS = ("TFBertSelfOutput", "TFBertOutput", "TFRobertaSelfOutput",
                        "TFRobertaOutput", "TFElectraSelfOutput", "TFElectraOutput",
                        "TFMPNetOutput")

# Self-attention blocks scaling their scores by 1 / `sqrt_att_head_size`, adding the
# attention mask, then softmax and dropout (tests/kernels/test_training_kernels.py checks the
# lines that do it in each).
SELF_ATTENTION_BLOCKS = ("TFBertSelfAttention", "TFRobertaSelfAttention",
                         "TFElectraSelfAttention")

# The families' transformers modules (each imports `stable_softmax` by name).
FAMILY_MODULES = tuple(f"transformers.models.{family}.modeling_tf_{family}" for family in
                       ("bert", "roberta", "electra", "albert", "distilbert", "deberta_v2",
                        "mpnet"))
