"""The daily alert bulletin for CDC epidemiologists: one self-contained HTML file and a PDF.

Intended command (wired in ``sentinel/cli.py``)::

    sentinel report --date 2025-12-31 [--out DIR] [--lang zh+en|zh|en] [--top 10]

which calls ``render_bulletin(settings, day, out_dir, lang=…, top=…)`` and prints the paths.

The bulletin is CDC-internal: it holds de-identified line lists (visit date, facility, age
group, sex, scrubbed chief complaint, diagnosis codes) and never a patient or visit key.
Images are embedded as ``data:`` URIs and the CSS is inline, so the HTML works offline;
the PDF is printed by WeasyPrint from the same HTML with the Noto Sans CJK SC font.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import jinja2
import pandas as pd

from geo.areas import AreaSet, load_area_set
from geo.maps import render_cluster_map, render_street_map
from reports.bulletin_data import AlertView, BulletinData, load_bulletin_data
from reports.bulletin_text import LABELS, SEVERITY, SYNDROMES, Lang, actions_for, say
from reports.figures import render_age_sex, render_epicurve
from sentinel.errors import UsageError
from sentinel.settings import Settings
from warehouse.store import Warehouse

__all__ = ["BulletinPaths", "render_bulletin", "render_bulletin_html"]

TEMPLATES = Path(__file__).parent / "templates"
LINE_LIST_ROWS = 40


@dataclass(frozen=True)
class BulletinPaths:
    """Files written by :func:`render_bulletin`."""

    html: Path
    pdf: Path | None
    figures: tuple[Path, ...]


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts (typed loosely: values are whatever the column holds)."""
    return [{str(k): v for k, v in row.items()} for row in df.to_dict("records")]


def _number(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[call-overload, arg-type]


def _fmt(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


class _Renderer:
    """Turns :class:`BulletinData` into template rows and figures in one language mode."""

    def __init__(self, data: BulletinData, lang: Lang, area: AreaSet | None, fig_dir: Path):
        self.data, self.lang, self.area, self.fig_dir = data, lang, area, fig_dir
        self.figures: list[Path] = []

    def t(self, key: str, **kw: object) -> str:
        zh, en = LABELS[key]
        return say((zh.format(**kw), en.format(**kw)), self.lang)

    def syndrome(self, name: str) -> str:
        return say(SYNDROMES.get(name, (name, name)), self.lang)

    def facility(self, facility_id: str, *, both: bool) -> str:
        """Facility name; line lists show one language to stay narrow."""
        pair = self.data.facilities.get(facility_id, (facility_id, facility_id))
        return say(pair, self.lang if both or self.lang == "en" else "zh")

    def streets(self, codes: object) -> str:
        names = [self.data.streets.get(c, (c, c)) for c in list(codes)]  # type: ignore[call-overload]
        if self.lang == "en":
            return ", ".join(en or zh for zh, en in names)
        return "、".join(zh for zh, _ in names)

    def _save(self, name: str, png: bytes) -> str:
        path = self.fig_dir / name
        path.write_bytes(png)
        self.figures.append(path)
        return _data_uri(png)

    def alert_row(self, rank: int, a: dict[str, object]) -> dict[str, str]:
        age = a["age_group"]
        return {
            "rank": str(rank),
            "severity": say(SEVERITY[str(a["severity"])], self.lang),
            "severity_class": str(a["severity"]),
            "announcement": self.t(str(a["announcement"])),
            "detector": str(a["detector"]),
            "streets": self.streets(a["street_codes"]),
            "syndrome": self.syndrome(str(a["syndrome"])),
            "age_group": str(age) if isinstance(age, str) else self.t("all_ages"),
            "observed": _fmt(a["observed"], 0),
            "expected": _fmt(a["expected"]),
            "upperbound": _fmt(a["upperbound"]),
            "recurrence": _fmt(a["recurrence_interval_days"], 0),
        }

    def detail(self, rank: int, view: AlertView) -> dict[str, object]:
        a = view.row
        codes = [str(c) for c in list(a["street_codes"])]  # type: ignore[call-overload]
        cluster = view.cluster
        title = f"{self.syndrome(str(a['syndrome']))} · {self.streets(codes)}"
        curve = render_epicurve(
            view.curve,
            self.data.day,
            cluster_window=view.window if cluster else None,
            expected=None if cluster else _number(a["expected"]),
            upperbound=None if cluster else _number(a["upperbound"]),
            title=f"{LABELS['curve'][0]} {LABELS['curve'][1]}",
        )
        age_sex = render_age_sex(view.cases, title=f"{LABELS['age_sex'][0]} {LABELS['age_sex'][1]}")
        map_uri = None
        if self.area is not None and set(codes) <= set(self.area.codes):
            path = self.fig_dir / f"alert-{rank:02d}-map"
            if len(codes) == 1:
                files = render_street_map(
                    self.area,
                    codes[0],
                    path=path,
                    formats=("png",),
                    english=self.lang != "zh",
                    dpi=90,
                )
            else:
                files = render_cluster_map(
                    self.area,
                    highlight=codes,
                    focus=codes,
                    path=path,
                    formats=("png",),
                    english=self.lang != "zh",
                    dpi=90,
                )
            self.figures.extend(files)
            map_uri = _data_uri(files[0].read_bytes())
        cases = view.cases
        lines = [
            {
                "visit_date": str(c["visit_date"]),
                "facility": self.facility(str(c["facility_id"]), both=False),
                "age_group": c["age_group"] if isinstance(c["age_group"], str) else "–",
                "sex": c["sex"],
                "complaint": c["chief_complaint"] or "",
                "codes": " ".join(list(c["diagnosis_codes"])),
            }
            for c in _records(cases.head(LINE_LIST_ROWS))
        ]
        return {
            "rank": rank,
            "title": title,
            "row": self.alert_row(rank, a),
            "window": f"{view.window[0]} – {view.window[1]}",
            "curve": self._save(f"alert-{rank:02d}-curve.png", curve),
            "age_sex": self._save(f"alert-{rank:02d}-age-sex.png", age_sex),
            "map": map_uri,
            "lines": lines,
            "more_rows": self.t("more_rows", n=len(cases) - LINE_LIST_ROWS)
            if len(cases) > LINE_LIST_ROWS
            else "",
        }

    def context(self, generated_at: dt.datetime) -> dict[str, object]:
        d = self.data
        new = int(d.alerts["announcement"].isin(["new", "grown"]).sum()) if len(d.alerts) else 0
        ongoing = int((d.alerts["announcement"] == "ongoing").sum()) if len(d.alerts) else 0
        syndromes_seen = sorted(set(d.alerts["syndrome"])) if len(d.alerts) else []
        return {
            "lang": "zh-CN" if self.lang != "en" else "en",
            "day": d.day.isoformat(),
            "generated_at": generated_at.strftime("%Y-%m-%d %H:%M"),
            "visits": d.visits,
            "counts": {"new": new, "ongoing": ongoing, "closed": d.closed},
            "syndromes": [
                {
                    "name": self.syndrome(r["syndrome"]),
                    "count": r["count"],
                    "prev7": _fmt(r["prev7"]),
                }
                for r in _records(d.syndromes)
            ],
            "alerts": [self.alert_row(i + 1, r) for i, r in enumerate(_records(d.alerts))],
            "details": [self.detail(i + 1, v) for i, v in enumerate(d.details)],
            "more_alerts": self.t("more_alerts", n=len(d.alerts) - len(d.details))
            if len(d.alerts) > len(d.details)
            else "",
            "actions": [
                {"syndrome": self.syndrome(s), "items": [say(p, self.lang) for p in actions_for(s)]}
                for s in syndromes_seen
            ],
            "quality": [
                {
                    "facility": self.facility(q["facility_id"], both=True),
                    "visits": q["visits"],
                    "normal": _fmt(q["normal"]),
                    "ratio": _fmt(q["ratio"], 2),
                    "late": q["late"],
                    "flag": self.t(q["flag"]) if q["flag"] else "",
                    "flag_class": q["flag"],
                }
                for q in _records(d.quality)
            ],
            "batches": [
                {
                    "batch": b["batch_id"][:8],
                    "source": b["source"],
                    "started": str(b["started"])[:16],
                    "loaded": b["loaded"],
                    "quarantined": b["quarantined"],
                    "reasons": b["reasons"],
                }
                for b in _records(d.batches)
            ],
        }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_bulletin_html(
    settings: Settings,
    day: dt.date,
    fig_dir: Path,
    *,
    lang: Lang = "zh+en",
    top: int = 10,
    generated_at: dt.datetime | None = None,
) -> tuple[str, list[Path]]:
    """Render the bulletin's HTML (figures also written to ``fig_dir``).

    Returns
    -------
    tuple of (str, list of Path)
        The HTML and the figure files.
    """
    if lang not in get_args(Lang):
        raise UsageError(f"lang must be one of {', '.join(get_args(Lang))}, not {lang!r}")
    if top < 1:
        raise UsageError(f"top must be at least 1, not {top}")
    root = settings.warehouse_dir
    if not (root / "visits").is_dir():
        raise UsageError(f"no warehouse with visits at {root}; load data first")
    data = load_bulletin_data(Warehouse(root), day, top=top)
    try:
        area: AreaSet | None = load_area_set(settings.area_set, home=settings.home)
    except ValueError:
        area = None  # the bulletin still renders, with a note instead of maps
    fig_dir.mkdir(parents=True, exist_ok=True)
    renderer = _Renderer(data, lang, area, fig_dir)
    env = _environment()
    env.globals["t"] = renderer.t
    css = (TEMPLATES / "bulletin.css").read_text(encoding="utf-8")
    context = renderer.context(generated_at or dt.datetime.now().replace(microsecond=0))
    html = env.get_template("bulletin.html.j2").render(css=css, **context)
    return html, renderer.figures


def render_bulletin(
    settings: Settings,
    day: dt.date,
    out_dir: Path | None = None,
    *,
    lang: Lang = "zh+en",
    top: int = 10,
    pdf: bool = True,
    generated_at: dt.datetime | None = None,
) -> BulletinPaths:
    """Write the daily alert bulletin of ``day`` as HTML and PDF.

    Parameters
    ----------
    settings : Settings
        Where the warehouse is (``settings.warehouse_dir``) and which area set draws maps.
    day : datetime.date
        The analysis day.
    out_dir : Path, optional
        Output folder; ``settings.home / "reports" / day.isoformat()`` by default.
    lang : {"zh+en", "zh", "en"}
        Chinese with English alongside, or one language.
    top : int
        Alerts given a detail section (curve, map, age/sex, line list); the others are
        in the table with a note.
    pdf : bool
        Also print the PDF with WeasyPrint.
    generated_at : datetime, optional
        Timestamp shown in the header (fix it for reproducible output); now by default.

    Returns
    -------
    BulletinPaths
        ``bulletin.html``, ``bulletin.pdf`` and the figure files under ``figures/``.

    Raises
    ------
    UsageError
        On an unknown ``lang``, ``top`` < 1 or a missing warehouse.
    """
    out = settings.home / "reports" / day.isoformat() if out_dir is None else Path(out_dir)
    html, figures = render_bulletin_html(
        settings, day, out / "figures", lang=lang, top=top, generated_at=generated_at
    )
    html_path = out / "bulletin.html"
    html_path.write_text(html, encoding="utf-8")
    pdf_path = None
    if pdf:
        from weasyprint import HTML  # slow import; only when printing

        pdf_path = out / "bulletin.pdf"
        HTML(string=html, base_url=str(out)).write_pdf(pdf_path)
    return BulletinPaths(html_path, pdf_path, tuple(figures))
