"""A Tune searcher holding one searcher per grid point, so every point's search runs at once.

The λ/τ search keeps the grid (task × encoder × size × seed × …) outside the searcher: each
point has its own Optuna search with its own budget. Run as one Tune experiment, the points
share the cluster: while one point waits for its next suggestion, another's students train.
Each sampled student is a pack of one (``trainable.pack_of``).
"""

from __future__ import annotations

import pickle

from ray.tune.search import Searcher


class PointSearchers(Searcher):
    """Suggest ``{"point": key, **sampled}`` round-robin over points with budget left."""

    def __init__(self, searchers: dict[str, Searcher], budgets: dict[str, int]):
        """Set the points.

        Args:
            searchers: Point key → its searcher (each with its own space, metric and mode).
            budgets: Point key → trials it may still suggest.
        """
        super().__init__()
        self.searchers = searchers
        self.budgets = {key: n for key, n in budgets.items() if n > 0}
        self.owner: dict[str, str] = {}
        self.turn = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """Accept Tune's metric and mode (each point's searcher has its own)."""
        self._metric, self._mode = metric, mode
        return True

    def suggest(self, trial_id: str):
        """Return the next point's sample, None while every open point waits, or FINISHED."""
        keys = [key for key, left in self.budgets.items() if left > 0]
        if not keys:
            return Searcher.FINISHED
        for step in range(len(keys)):
            key = keys[(self.turn + step) % len(keys)]
            sample = self.searchers[key].suggest(trial_id)
            if isinstance(sample, dict):
                self.turn = (self.turn + step + 1) % len(keys)
                self.budgets[key] -= 1
                self.owner[trial_id] = key
                return {"point": key, **sample}
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Pass an intermediate result to the trial's point."""
        if trial_id in self.owner:
            self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """Pass the final result to the trial's point."""
        if trial_id in self.owner:
            self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        """Save budgets, owners and every point's searcher with Tune's experiment state."""
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        """Restore what ``save`` wrote."""
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))
