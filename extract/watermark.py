"""Watermarks of incremental pulls, kept under ``$SENTINEL_HOME/state/``.

A watermark is the latest source ``updated_at`` already loaded. The next pull asks for
rows changed after ``watermark - look-back`` (late commits land with earlier times), and
the watermark moves only after the batch is loaded, so a crash repeats a pull instead of
skipping one; the warehouse's idempotent upsert makes the repeat harmless.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path


class WatermarkStore:
    """A small JSON file of ``source id → watermark``; written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()}

    def get(self, source_id: str) -> datetime | None:
        """The watermark of ``source_id``, or None before its first load."""
        value = self._read().get(source_id)
        return datetime.fromisoformat(value) if value else None

    def set(self, source_id: str, watermark: datetime) -> None:
        """Record ``watermark`` (never moves backwards)."""
        data = self._read()
        old = data.get(source_id)
        if old and datetime.fromisoformat(old) >= watermark:
            return
        data[source_id] = watermark.isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
