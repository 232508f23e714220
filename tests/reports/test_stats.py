"""Leaders' statistics brief: tables on a hand-built warehouse, suppression in every output.

The warehouse (week 2025-03-08..14) is small enough to count by hand:

* facilities F01 tertiary (10 outpatient + 2 emergency), F02 secondary (6 outpatient),
  F03 community health centre (4 outpatient): 22 visits;
* streets: 12 visits from the first street, 3 from the second, 7 from the third;
* ILI: 8 visits this week, 5 the week before, 2 in the same week of 2024;
  gastrointestinal: 3 this week;
* alerts: three ILI groups (A0 on the 13th continued by A1 on the 14th, closed as a true
  outbreak 26 h after A0; A2 investigating after 5 h; A3 not reviewed) and one
  gastrointestinal (not reviewed): four groups, five alert rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from openpyxl import load_workbook
from PIL import Image

from geo.areas import load_area_set
from geo.maps import SUPPRESSED_FILL, SUPPRESSED_HATCH, render_cluster_map
from reports.stats import StatsPaths, build_tables, render_stats, shown_tables
from reports.stats_suppress import COMPLEMENT, SMALL, suppress_small_counts
from reports.stats_tables import TOTAL_LABEL, period_of
from sentinel.errors import UsageError
from sentinel.settings import Settings
from warehouse.reviews import append_review
from warehouse.store import Warehouse

END = dt.date(2025, 3, 14)
CREATED = dt.datetime(2025, 3, 14, 6, 0)
INTEGER = re.compile(r"^-?\d{1,3}(,\d{3})*$|^-?\d+$")


def _visit(
    n: int,
    day: dt.date,
    facility: str,
    street: str,
    setting: str = "outpatient",
    syndromes: tuple[str, ...] = (),
) -> dict[str, Any]:
    time = dt.datetime.combine(day, dt.time(9, 0))
    return {
        "visit_key": f"v{n:05d}",
        "source": "his",
        "facility_id": facility,
        "visit_date": day,
        "visit_time": time,
        "setting": setting,
        "patient_key": f"p{n:05d}",
        "sex": "F",
        "age_years": 30,
        "age_group": "25-59",
        "street_code": street,
        "residence_method": "code",
        "chief_complaint": "发热咳嗽",
        "diagnosis_codes": ["J11.1"],
        "temperature_c": 38.5,
        "syndromes": sorted(syndromes),
        "updated_at": time + dt.timedelta(hours=3),
    }


def _visits(codes: list[str]) -> pd.DataFrame:
    s1, s2, s3 = codes[:3]
    week = [END - dt.timedelta(days=i) for i in range(7)]
    plan: list[tuple[str, str, str]] = (
        [("F01", s1, "outpatient")] * 10
        + [("F01", s1, "emergency")] * 2
        + [("F02", s2, "outpatient")] * 3
        + [("F02", s3, "outpatient")] * 3
        + [("F03", s3, "outpatient")] * 4
    )
    rows = []
    ili = {0, 1, 2, 3, 4, 5, 6, 7}  # the first eight visits (street 1)
    gi = {12, 13, 14}  # F02's three visits from street 2
    for n, (facility, street, setting) in enumerate(plan):
        day = week[n % 7] if facility != "F03" else week[n % 2]  # F03 reports on 2 days
        syn = ("ili",) if n in ili else ("gastrointestinal",) if n in gi else ()
        rows.append(_visit(n, day, facility, street, setting, syn))
    for i in range(5):  # previous week: ILI
        rows.append(_visit(100 + i, END - dt.timedelta(days=8 + i), "F01", s1, syndromes=("ili",)))
    for i in range(2):  # same week last year
        rows.append(_visit(200 + i, dt.date(2024, 3, 10 + i), "F01", s1, syndromes=("ili",)))
    frame = pd.DataFrame(rows)
    for col in ("visit_time", "updated_at"):
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[us]")
    frame["age_years"] = frame["age_years"].astype("int16")
    return frame


def _alert(alert_id: str, syndrome: str, severity: str, street: str) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "syndrome": syndrome,
        "street_codes": [street],
        "detector": "ears_c2",
        "observed": 6.0,
        "expected": 1.0,
        "upperbound": 3.0,
        "score": 4.0,
        "p_value": 0.001,
        "severity": severity,
        "status": "new",
        "created_at": CREATED,
        "announcement": "new",
        "continues": None,
    }


@pytest.fixture(scope="module")
def stats_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose warehouse holds the hand-built week described in the module doc."""
    home = tmp_path_factory.mktemp("stats")
    settings = Settings(home=home)
    store = Warehouse(settings.warehouse_dir)
    area = load_area_set("changning")
    streets = pd.DataFrame(area.streets.drop(columns="geometry"))
    streets["geometry_wkt"] = area.streets.geometry.to_wkt().to_numpy()
    store.replace_table(
        "streets", streets[["street_code", "name_zh", "name_en", "population", "geometry_wkt"]]
    )
    store.replace_table(
        "facilities",
        pd.DataFrame(
            {
                "facility_id": ["F01", "F02", "F03"],
                "name_zh": ["甲医院", "乙医院", "丙社区卫生服务中心"],
                "name_en": ["Hospital A", "Hospital B", "Centre C"],
                "level": ["tertiary", "secondary", "chsc"],
                "kind": ["general", "general", "community"],
                "street_code": area.codes[:3],
            }
        ),
    )
    result = store.upsert_visits(_visits(area.codes), "b1")
    store.rebuild_syndrome_daily(result.dates_touched, ["gastrointestinal", "ili"])
    s1, s2 = area.codes[:2]
    a1 = _alert("A1", "ili", "high", s1) | {"continues": "A0", "announcement": "ongoing"}
    alerts = [
        a1,
        _alert("A2", "ili", "high", s1),
        _alert("A3", "ili", "medium", s1),
        _alert("G1", "gastrointestinal", "low", s2),
    ]
    store.write_alerts(END, pd.DataFrame(alerts))
    earlier = _alert("A0", "ili", "medium", s1) | {"created_at": CREATED - dt.timedelta(days=1)}
    store.write_alerts(END - dt.timedelta(days=1), pd.DataFrame([earlier]))
    root = settings.warehouse_dir
    append_review(
        root,
        {
            "alert_id": "A1",
            "status": "investigating",
            "updated_at": CREATED + dt.timedelta(hours=2),
        },
    )
    append_review(
        root,
        {
            "alert_id": "A1",
            "status": "closed",
            "outcome": "true_outbreak",
            "updated_at": CREATED + dt.timedelta(hours=9),
        },
    )
    append_review(
        root,
        {
            "alert_id": "A2",
            "status": "investigating",
            "updated_at": CREATED + dt.timedelta(hours=5),
        },
    )
    return settings


@pytest.fixture(scope="module")
def rendered(
    stats_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, StatsPaths]:
    out = tmp_path_factory.mktemp("out")
    return {
        audience: render_stats(
            stats_home, period="week", end=END, audience=audience, out_dir=out / audience
        )
        for audience in ("public", "internal")
    }


def _tables(settings: Settings, audience: str) -> dict[str, pd.DataFrame]:
    exact = build_tables(Warehouse(settings.warehouse_dir), period_of("week", END))
    return {t.name: t.frame for t in shown_tables(exact, audience)}  # type: ignore[arg-type]


# -- the suppression rule --------------------------------------------------------------


def test_suppress_hides_one_to_four_and_keeps_zero() -> None:
    df = pd.DataFrame({"a": [0, 1, 4, 5, 12]})
    assert suppress_small_counts(df, ["a"])["a"].tolist() == [0, SMALL, SMALL, 5, 12]
    assert df["a"].tolist() == [0, 1, 4, 5, 12]  # input untouched


def test_suppress_complements_a_lone_hidden_cell_in_a_row_with_a_total() -> None:
    df = pd.DataFrame({"x": [3, 0], "y": [20, 7], "z": [9, 0], "total": [32, 7]})
    out = suppress_small_counts(df, ["x", "y", "z", "total"], total_column="total")
    assert out.iloc[0].to_list() == [SMALL, 20, COMPLEMENT, 32]  # 9 is the smallest other
    assert out.iloc[1].to_list() == [0, 7, 0, 7]


def test_suppress_hides_the_total_when_no_other_cell_can_be() -> None:
    df = pd.DataFrame({"x": [3], "y": [0], "total": [3]})
    out = suppress_small_counts(df, ["x", "y", "total"], total_column="total")
    assert out.iloc[0].to_list() == [SMALL, 0, SMALL]


def test_suppress_along_columns_and_derived_values() -> None:
    df = pd.DataFrame({"n": [2, 30, 8, 40], "rate": [0.1, 1.5, 0.4, 2.0]})
    out = suppress_small_counts(df, ["n"], total_row=True, derived={"rate": ["n"]})
    assert out["n"].tolist() == [SMALL, 30, COMPLEMENT, 40]
    assert out["rate"].tolist() == [COMPLEMENT, 1.5, COMPLEMENT, 2.0]


def test_suppress_rejects_bad_arguments() -> None:
    df = pd.DataFrame({"n": [1]})
    with pytest.raises(ValueError, match="missing"):
        suppress_small_counts(df, ["missing"])
    with pytest.raises(ValueError, match="threshold"):
        suppress_small_counts(df, ["n"], threshold=0)


# -- tables on the hand-built warehouse ------------------------------------------------


def test_period_bounds() -> None:
    week = period_of("week", END)
    assert (week.first, week.previous, week.last_year) == (
        dt.date(2025, 3, 8),
        (dt.date(2025, 3, 1), dt.date(2025, 3, 7)),
        (dt.date(2024, 3, 8), dt.date(2024, 3, 14)),
    )
    month = period_of("month", dt.date(2025, 3, 31))
    assert (month.first, month.previous) == (
        dt.date(2025, 3, 1),
        (dt.date(2025, 1, 29), dt.date(2025, 2, 28)),
    )


def test_internal_tables_hold_exact_counts(stats_home: Settings) -> None:
    t = _tables(stats_home, "internal")
    level = t["visits_by_level"].set_index("level")
    assert level[["outpatient", "emergency", "inpatient", "total"]].to_numpy().tolist() == [
        [10, 2, 0, 12],
        [6, 0, 0, 6],
        [4, 0, 0, 4],
        [20, 2, 0, 22],
    ]
    street = t["visits_by_street"]
    assert street["visits"].tolist()[:3] == [12, 3, 7] and street["visits"].iloc[-1] == 22
    first = street.iloc[0]
    assert first["rate_per_10k"] == round(12 / first["population"] * 10_000, 1)
    trends = t["syndrome_trends"].set_index("syndrome")
    ili = trends.loc[next(i for i in trends.index if "Influenza" in i)]
    assert (ili["count"], ili["previous"], ili["last_year"], ili["change_previous_pct"]) == (
        8,
        5,
        2,
        60.0,
    )
    alerts = t["alerts_outcomes"].set_index("syndrome")
    assert list(alerts.loc[TOTAL_LABEL]) == [1, 0, 0, 1, 2, 4]
    times = t["response_times"].set_index("severity")
    # A1 continues A0 (created a day earlier): one group, first reviewed after 26 h; A2 after 5 h
    assert list(times.loc["高 high"]) == [2, 2, 15.5]
    assert times["median_hours"].isna().to_list() == [False, True, True, False]
    quality = t["data_quality"].set_index("facility_id")
    assert quality.loc["F01", "days_reporting"] == "7/7"
    assert quality.loc["F03", "days_reporting"] == "2/7"
    assert quality.loc["F03", "completeness_pct"] == "29%"
    assert quality.loc["F01", "median_lag_hours"] == 3.0


def test_public_tables_suppress_and_complement(stats_home: Settings) -> None:
    level = _tables(stats_home, "public")["visits_by_level"].set_index("level")
    rows = level[["outpatient", "emergency", "inpatient", "total"]].to_numpy().tolist()
    assert rows == [
        [COMPLEMENT, SMALL, 0, 12],  # 2 hidden, so 10 too (12 is shown)
        [6, 0, 0, COMPLEMENT],  # 4 hidden in the total column: 6 is the smallest other
        [SMALL, 0, 0, SMALL],
        [COMPLEMENT, SMALL, 0, 22],
    ]
    street = _tables(stats_home, "public")["visits_by_street"]
    # the total row (22, also in visits_by_level) would give 22 - 12 - 7 = 3: 7 is hidden
    assert street["visits"].tolist()[:3] == [12, SMALL, COMPLEMENT]
    assert street["visits"].tolist()[-1] == 22
    assert street["rate_per_10k"].tolist()[1:3] == [COMPLEMENT, COMPLEMENT]
    assert "visits" not in _tables(stats_home, "public")["data_quality"]


def test_no_visits_is_a_usage_error(stats_home: Settings) -> None:
    with pytest.raises(UsageError, match="no visits"):
        render_stats(stats_home, period="week", end=dt.date(2020, 1, 1))
    with pytest.raises(UsageError, match="period"):
        render_stats(stats_home, period="year", end=END)  # type: ignore[arg-type]


# -- every public output: no count from 1 to 4 -------------------------------------------


def _small_integers(texts: list[str]) -> list[str]:
    """Cells/tokens that read as an integer from 1 to 4."""
    return [
        t for t in texts if INTEGER.match(t.strip()) and 1 <= int(t.strip().replace(",", "")) <= 4
    ]


def _csv_cells(folder: Path) -> list[str]:
    cells = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8-sig") as fh:
            cells += [c for row in csv.reader(fh) for c in row]
    return cells


def _xlsx_cells(path: Path) -> list[str]:
    """Cells as text; numbers formatted with a decimal (derived values) keep it."""
    book = load_workbook(path)
    cells = []
    for sheet in book:
        for row in sheet.iter_rows():
            for c in row:
                if c.value is not None:
                    decimal = c.number_format == "0.0" and isinstance(c.value, int | float)
                    cells.append(f"{c.value:.1f}" if decimal else str(c.value))
    return cells


def _html_cells(path: Path) -> list[str]:
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", path.read_text(encoding="utf-8"))
    return [html.unescape(c) for c in cells]


def _pdf_tokens(path: Path) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    lines = [
        ln for ln in text.splitlines() if not re.fullmatch(r"\s*\d+ / \d+\s*", ln)
    ]  # page numbers
    return " ".join(lines).split()


def test_public_outputs_hold_no_count_below_five(rendered: dict[str, StatsPaths]) -> None:
    public = rendered["public"]
    for what, cells in (
        ("csv", _csv_cells(public.csv_dir)),
        ("xlsx", _xlsx_cells(public.xlsx)),
        ("html", _html_cells(public.html)),
        ("pdf", _pdf_tokens(public.pdf)),
    ):
        assert SMALL in cells, what
        assert _small_integers(cells) == [], what


def test_internal_outputs_hold_the_exact_small_counts(rendered: dict[str, StatsPaths]) -> None:
    internal = rendered["internal"]
    for what, cells in (
        ("csv", _csv_cells(internal.csv_dir)),
        ("xlsx", _xlsx_cells(internal.xlsx)),
        ("html", _html_cells(internal.html)),
        ("pdf", _pdf_tokens(internal.pdf)),
    ):
        assert SMALL not in cells, what
        assert {"2", "3", "4"} <= set(_small_integers(cells)), what


def test_outputs_hold_no_identifiers(rendered: dict[str, StatsPaths]) -> None:
    for paths in rendered.values():
        text = paths.html.read_text(encoding="utf-8") + "".join(_csv_cells(paths.csv_dir))
        assert "patient_key" not in text and "p00001" not in text and "v00001" not in text


def test_xlsx_has_one_sheet_per_table(rendered: dict[str, StatsPaths]) -> None:
    names = load_workbook(rendered["public"].xlsx).sheetnames
    assert names == [
        "visits_by_level",
        "visits_by_street",
        "syndrome_trends",
        "alerts_outcomes",
        "response_times",
        "data_quality",
    ]
    assert sorted(p.stem for p in rendered["public"].csv_dir.glob("*.csv")) == sorted(names)


def test_html_is_self_contained_with_the_map(rendered: dict[str, StatsPaths]) -> None:
    page = rendered["public"].html.read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page


def test_pdf_pages_are_not_blank_and_hold_chinese(
    rendered: dict[str, StatsPaths], tmp_path: Path
) -> None:
    pdf = rendered["public"].pdf
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages
    for page in pages:
        grey = np.asarray(Image.open(page).convert("L"))
        assert (grey < 200).mean() > 0.005, page.name
    text = " ".join(_pdf_tokens(pdf))
    assert "按机构级别的就诊人次" in text and "数据质量评分" in text


# -- the rate map ---------------------------------------------------------------------


def _colour_count(path: Path, colour: str) -> int:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    want = np.round(np.asarray(to_rgb(colour)) * 255).astype(int)
    return int((np.abs(rgb - want) <= 1).all(axis=2).sum())


def test_public_map_hatches_suppressed_streets(rendered: dict[str, StatsPaths]) -> None:
    # streets 2 and 3 (3 and 7 visits) have hidden rates in public outputs only
    public, internal = (rendered[a].html.parent / "rate_map.png" for a in ("public", "internal"))
    assert _colour_count(public, SUPPRESSED_FILL) > 5000
    assert _colour_count(public, SUPPRESSED_HATCH) > 1000
    assert _colour_count(internal, SUPPRESSED_FILL) < 1000
    assert _colour_count(internal, SUPPRESSED_HATCH) < 500
    hatched = "灰色交叉线 = 已抑制 hatched grey = suppressed"
    assert hatched in rendered["public"].html.read_text(encoding="utf-8")
    assert hatched not in rendered["internal"].html.read_text(encoding="utf-8")


def test_map_suppressed_streets_are_checked(tmp_path: Path) -> None:
    area = load_area_set("changning")
    code = area.codes[0]
    with pytest.raises(ValueError, match="both in values and suppressed"):
        render_cluster_map(area, values={code: 1.0}, suppressed=[code], path=tmp_path / "m")
    with pytest.raises(ValueError, match="suppressed: street codes not in area set"):
        render_cluster_map(area, suppressed=["999"], path=tmp_path / "m")
    with pytest.raises(ValueError, match="scale must be zero or observed"):
        render_cluster_map(area, values={code: 1.0}, scale="log", path=tmp_path / "m")  # type: ignore[arg-type]
