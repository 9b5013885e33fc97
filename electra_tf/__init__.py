"""electra-tf: ELECTRA pretraining, fine-tuning and serving in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
