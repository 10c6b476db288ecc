"""How long a visitor's files are kept: uploads, results and Gradio's copies, all deleted after the retention.

Gradio deletes what it caches (uploads, and the copies of outputs it serves) on the schedule given
to `gr.Blocks(delete_cache=...)`. The results CSV the Space writes itself lives in a folder of its
own that Gradio never learns about (Gradio serves a copy of it), so `ResultsFolders` deletes those
folders on the same schedule.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

RESULTS_PREFIX = "sentiment-results-"
# Gradio checks its cache at most this often: a file may outlive its age by one period, so the
# period is taken out of the age (and kept short against a retention of a few seconds).
LONGEST_CHECK_S = 60


def cache_schedule(retention_minutes: float) -> tuple[int, int]:
    """`(frequency, age)` in whole seconds, as `delete_cache` takes them, such that a file is gone by the
    retention: it is deleted at the first check after it is `age` old, and checks come every `frequency`."""
    retention = max(2, int(retention_minutes * 60))
    frequency = max(1, min(LONGEST_CHECK_S, retention // 10))
    return frequency, retention - frequency


def describe_retention(retention_minutes: float) -> str:
    """The retention in words, for the page: "1 hour", "30 minutes", "5 seconds"."""
    seconds = round(retention_minutes * 60)
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


class ResultsFolders:
    """The folders the Space writes results into, each deleted with its contents once older than `age`.

    Written by hand because Gradio's `delete_cache` deletes only the files in its own cache; the
    checks run on a daemon thread every `frequency` seconds, as Gradio's do.
    """

    def __init__(self, schedule: tuple[int, int]) -> None:
        self.frequency, self.age = schedule
        self._created: dict[Path, float] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="results-sweeper", daemon=True).start()

    def new(self) -> Path:
        """A fresh, private folder for one request's results."""
        folder = Path(tempfile.mkdtemp(prefix=RESULTS_PREFIX))
        with self._lock:
            self._created[folder] = time.monotonic()
        return folder

    def sweep(self) -> None:
        """Delete every folder older than `age`."""
        now = time.monotonic()
        with self._lock:
            expired = [folder for folder, created in self._created.items() if now - created > self.age]
            for folder in expired:
                del self._created[folder]
        for folder in expired:
            shutil.rmtree(folder, ignore_errors=True)

    def _run(self) -> None:
        while True:
            time.sleep(self.frequency)
            self.sweep()
