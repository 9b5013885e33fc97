"""Data: dynamic masking, the pretraining input pipeline, text preprocessing."""
