"""Unpickle Lightning checkpoints whose hyper-parameters need packages raypi does not install.

GLoRIA's ``.ckpt`` stores its config (an OmegaConf object) beside the weights. Only the
weights are used, so classes that cannot be imported are replaced by inert stand-ins.
"""

from __future__ import annotations

import pickle

load = pickle.load


class MissingClass(dict):
    """Stand-in for an object whose class cannot be imported; keeps its state, does nothing."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.args = args

    def __setstate__(self, state):
        self.state = state


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that maps unimportable classes to :class:`MissingClass`."""

    def find_class(self, module: str, name: str):
        """Return the class, or a stand-in subclass named like it when it cannot be imported."""
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (MissingClass,), {"__module__": module})
