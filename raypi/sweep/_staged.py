"""A Tune searcher that runs both stages in one experiment: students wait for their teacher.

It suggests packs of one (``--no-packs``: one trial per Tune trial, trained by the pack
trainable like any pack). Stage-1 trials are suggested first; a student is suggested as soon as
its own teacher has finished (or at once if an earlier run recorded the teacher). One
experiment instead of two keeps trial actors (and their imported torch) alive across stages and
lets students start while other teachers still train. A teacher that fails for good turns its
waiting students into recorded failures without running them.
"""

from __future__ import annotations

import pickle
from collections import deque

from ray.tune.search import Searcher


class StagedSearcher(Searcher):
    """Suggest ``{"trial_key": …}`` configs, stage 1 first, each student after its teacher."""

    def __init__(self, first: list[str], students: dict[str, str], ready: set[str], on_orphan):
        """Set the order.

        Args:
            first: Keys of the stage-1 trials to run.
            students: Student key → teacher key, for the students to run.
            ready: Teacher keys already recorded ok.
            on_orphan: ``f(student_key, teacher_key)`` recording a student whose teacher failed.
        """
        super().__init__()
        self.first = deque(first)
        self.ready = deque(key for key, teacher in students.items() if teacher in ready)
        self.waiting: dict[str, list[str]] = {}
        for key, teacher in students.items():
            if teacher not in ready:
                self.waiting.setdefault(teacher, []).append(key)
        self.on_orphan = on_orphan
        self.keys: dict[str, str] = {}
        self.orphans = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """Accept Tune's metric and mode (the configs come from this searcher)."""
        self._metric, self._mode = metric, mode
        return True

    def suggest(self, trial_id: str):
        """Return the next trial's config, None to wait for a teacher, or FINISHED."""
        queue = self.first or self.ready
        if queue:
            key = queue.popleft()
            self.keys[trial_id] = key
            return {"trial_key": key}
        return None if self.waiting else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """Release a finished teacher's students, or record them failed if it failed."""
        key = self.keys.get(trial_id)
        students = self.waiting.pop(key, [])
        if error:
            for student in students:
                self.on_orphan(student, key)
            self.orphans += len(students)
        else:
            self.ready.extend(students)

    def save(self, checkpoint_path: str) -> None:
        """Save the queues with Tune's experiment state (the orphan callback is not saved)."""
        state = {name: getattr(self, name) for name in _STATE}
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(state, handle)

    def restore(self, checkpoint_path: str) -> None:
        """Restore the queues saved by ``save``."""
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


_STATE = ("first", "ready", "waiting", "keys", "orphans")
