"""raypi: when do radiology reports help train medical image classifiers? Experiments on Ray."""

__version__ = "0.3.0"
"""raypi's version: it changes whenever results can change (see CHANGELOG.md)."""
