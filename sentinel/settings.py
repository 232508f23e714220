"""One typed settings object, loaded once from the environment and an optional file.

Resolution order (later wins): built-in defaults, ``$SENTINEL_HOME/sentinel.toml``,
environment variables, command-line options. Secrets (the HMAC key, database passwords)
come only from the environment or Airflow connections/variables, never from the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from reports.notify import NotifySettings, parse_notify_settings
from sentinel.detect_settings import DetectSettings, parse_detect_settings
from sentinel.errors import UsageError
from sentinel.pipeline_settings import PipelineSettings, parse_pipeline_settings
from sentinel.scan_settings import ScanSettings, parse_scan_settings

DEFAULT_HOME = Path(".sentinel")
SETTINGS_FILE = "sentinel.toml"


@dataclass(frozen=True)
class Settings:
    """Where Sentinel keeps its state and how it behaves.

    Attributes
    ----------
    home : Path
        Folder holding all state: warehouse, logs, simulated sources of the demo.
    area_set : str
        Name of the shipped area set (streets, facilities, gazetteer) to use.
    timezone : str
        Local time zone of the clinical sources.
    hmac_key : str or None
        Secret for patient keys (``SENTINEL_HMAC_KEY``); required outside the demo.
    """

    home: Path = DEFAULT_HOME
    area_set: str = "changning"
    timezone: str = "Asia/Shanghai"
    hmac_key: str | None = field(default=None, repr=False)
    his: Mapping[str, object] = field(default_factory=dict)
    """The ``[his]`` section: table and column names of a HIS database (see extract.his)."""
    detect: DetectSettings = field(default_factory=DetectSettings)
    """The ``[detect]`` section: methods per syndrome for warehouse mode."""
    scan: ScanSettings = field(default_factory=ScanSettings)
    """The ``[scan]`` section: the nightly space-time scan."""
    notify: NotifySettings = field(default_factory=NotifySettings)
    """The ``[notify]`` section: bulletin e-mail and webhook (secrets from the environment)."""
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    """The ``[pipeline]`` section: sources and timing of the Airflow DAGs."""

    @property
    def warehouse_dir(self) -> Path:
        """Root of the Parquet warehouse and its DuckDB catalog."""
        return self.home / "warehouse"

    @property
    def logs_dir(self) -> Path:
        """Folder of the structured log files."""
        return self.home / "logs"

    def with_home(self, home: Path | None) -> Settings:
        """Return a copy pointing at another home (command-line ``--home``)."""
        return self if home is None else replace(self, home=home)


def load_settings(home: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load settings from defaults, ``sentinel.toml`` in the home folder and the environment.

    Parameters
    ----------
    home : Path, optional
        Overrides ``SENTINEL_HOME``.
    environ : dict, optional
        Environment to read instead of ``os.environ`` (tests).

    Returns
    -------
    Settings
    """
    env = dict(os.environ if environ is None else environ)
    resolved_home = home or Path(env.get("SENTINEL_HOME") or DEFAULT_HOME)
    values: dict[str, object] = {}
    file = resolved_home / SETTINGS_FILE
    if file.is_file():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read settings file {file}: {exc}") from exc
        known = {"area_set", "timezone", "his", "detect", "scan", "notify", "pipeline"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown setting(s) in {file}: {', '.join(unknown)}")
        tables = ("his", "detect", "scan", "notify", "pipeline")
        values.update({k: str(v) for k, v in data.items() if k not in tables})
        if "his" in data:
            if not isinstance(data["his"], dict):
                raise UsageError(f"[his] in {file} must be a table")
            values["his"] = data["his"]
        if "detect" in data:
            if not isinstance(data["detect"], dict):
                raise UsageError(f"[detect] in {file} must be a table")
            values["detect"] = parse_detect_settings(data["detect"], str(file))
        if "scan" in data:
            if not isinstance(data["scan"], dict):
                raise UsageError(f"[scan] in {file} must be a table")
            values["scan"] = parse_scan_settings(data["scan"], str(file))
        if "pipeline" in data:
            if not isinstance(data["pipeline"], dict):
                raise UsageError(f"[pipeline] in {file} must be a table")
            values["pipeline"] = parse_pipeline_settings(data["pipeline"], str(file))
        notify = data.get("notify", {})
        if not isinstance(notify, dict):
            raise UsageError(f"[notify] in {file} must be a table")
        values["notify"] = parse_notify_settings(notify, str(file), env)
    if env.get("SENTINEL_AREA_SET"):
        values["area_set"] = env["SENTINEL_AREA_SET"]
    if "notify" not in values:
        values["notify"] = parse_notify_settings({}, "the environment", env)
    return Settings(
        home=resolved_home,
        hmac_key=env.get("SENTINEL_HMAC_KEY") or None,
        **values,  # type: ignore[arg-type]
    )
