"""The flows' access to the composition root.

The process that runs flows either hands its ``Ripen`` in (``ripen run`` does) or the first
flow run builds one from the ``RIPEN_*`` settings (a flow run a Prefect worker started; it
does not migrate: ``ripen deploy`` did). Nothing is built at import time.
"""

from __future__ import annotations

import threading

from engine.bootstrap import Ripen, bootstrap_migrated

_lock = threading.Lock()
_current: Ripen | None = None


def use(ripen: Ripen | None) -> None:
    """Make ``ripen`` the runtime of this process's flows (``None`` forgets it)."""
    global _current
    with _lock:
        _current = ripen


def current() -> Ripen:
    global _current
    with _lock:
        if _current is None:
            _current = bootstrap_migrated()
        return _current
