"""The entry point of dorm-async: registers the distribution with dorm; it implements no hook.

The loaders and ``BackgroundTasks`` are plain classes used from application code; they
need nothing from core at startup. Registering still lists dorm-async (and its version)
among the loaded plugins. This module imports nothing heavy: every dorm process loads it.
"""

from __future__ import annotations
