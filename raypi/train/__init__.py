"""Heads, objectives and the fit loop on frozen tokens: no Ray, no files."""

from raypi.train.config import DEFAULT_LAMBDA, DEFAULT_TAU, METHODS, FitConfig
from raypi.train.data import FitData, FitResult
from raypi.train.loop import fit

__all__ = ["DEFAULT_LAMBDA", "DEFAULT_TAU", "METHODS", "FitConfig", "FitData", "FitResult", "fit"]
