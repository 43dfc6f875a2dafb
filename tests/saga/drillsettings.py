"""Settings for the ``dorm`` CLI in the crash drills: the database comes from the test."""

from __future__ import annotations

import json
import os

DATABASES = {"default": json.loads(os.environ["DORM_SAGA_TEST_DB"])}
