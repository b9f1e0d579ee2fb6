"""raypi: when do radiology reports help train medical image classifiers? Experiments on Ray."""

__version__ = "0.1.0"
