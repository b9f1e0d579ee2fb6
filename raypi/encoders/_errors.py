"""The error every weight loader raises: a file or folder that cannot be used, and why."""


class WeightsError(ValueError):
    """A weights file or folder is missing, unreadable, or does not fit the architecture."""
