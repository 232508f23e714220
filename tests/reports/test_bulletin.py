"""The daily bulletin rendered for real: Chromium screenshots, PDF pages, text layer."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reports.bulletin import BulletinPaths, render_bulletin
from reports.bulletin_data import ClosedCounts, load_bulletin_data, rank_alerts
from reports.lifecycle import update_alert
from sentinel.errors import UsageError
from sentinel.settings import Settings
from tests.reports.browser import non_blank, tool
from warehouse.store import Warehouse

GENERATED_AT = dt.datetime(2025, 3, 15, 7, 0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T9 = dt.time(9)
DAY1 = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def bulletin(bulletin_warehouse: Any, tmp_path_factory: pytest.TempPathFactory) -> BulletinPaths:
    out = tmp_path_factory.mktemp("bulletin")
    return render_bulletin(
        bulletin_warehouse.settings, bulletin_warehouse.day, out, generated_at=GENERATED_AT
    )


def test_writes_html_pdf_and_figures(bulletin: BulletinPaths) -> None:
    assert bulletin.html.is_file() and bulletin.pdf is not None and bulletin.pdf.is_file()
    assert bulletin.figures and all(p.read_bytes().startswith(PNG_MAGIC) for p in bulletin.figures)
    assert {"curve", "age-sex", "map"} <= {p.stem.split("-", 2)[2] for p in bulletin.figures}


def test_default_out_dir_is_under_home(bulletin_warehouse: Any) -> None:
    paths = render_bulletin(
        bulletin_warehouse.settings, bulletin_warehouse.day, pdf=False, lang="zh"
    )
    assert paths.html.parent == bulletin_warehouse.settings.home / "reports" / "2025-03-14"
    assert paths.pdf is None


def test_html_is_self_contained_and_images_decode(bulletin: BulletinPaths) -> None:
    html = bulletin.html.read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]*\ssrc="([^"]+)"', html)
    assert len(sources) == 9  # three alerts: curve, age/sex and map each
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert not re.search(r'(href|src)="(https?:)?//', html), "external resource in the HTML"
    assert "<link" not in html and "<script" not in html


def test_chromium_renders_without_broken_images(bulletin: BulletinPaths, tmp_path: Path) -> None:
    chromium = tool("chromium")
    shot = tmp_path / "shot.png"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    url = bulletin.html.as_uri()
    run = subprocess.run(
        [
            *base,
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={shot}",
            "--window-size=1100,1600",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert non_blank(shot)
    assert "Failed to load resource" not in run.stderr and "Uncaught" not in run.stderr
    # Chromium sets naturalWidth 0 on an image it could not decode; the DOM dump shows it.
    probe = "<script>addEventListener('load',()=>{document.body.dataset.broken=[...document.images].filter(i=>!i.complete||i.naturalWidth===0).length;document.body.dataset.images=document.images.length})</script>"
    page = tmp_path / "probe.html"
    page.write_text(
        bulletin.html.read_text(encoding="utf-8").replace("</body>", probe + "</body>"),
        encoding="utf-8",
    )
    dom = subprocess.run(
        [*base, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 'data-broken="0"' in dom and 'data-images="9"' in dom


def test_pdf_pages_are_non_blank_with_chinese_and_english(
    bulletin_warehouse: Any, bulletin: BulletinPaths, tmp_path: Path
) -> None:
    assert bulletin.pdf is not None
    subprocess.run(
        [tool("pdftoppm"), "-r", "40", "-png", str(bulletin.pdf), str(tmp_path / "page")],
        check=True,
        timeout=120,
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and all(non_blank(p) for p in pages)
    text = subprocess.run(
        [tool("pdftotext"), str(bulletin.pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "症状监测" in text and "Daily syndromic surveillance" in text
    for codes in bulletin_warehouse.alerts["street_codes"]:
        for code in codes:
            assert bulletin_warehouse.street_names[code] in text
    assert "流感样病例" in text and "influenza-like illness" in text


def test_no_patient_key_in_outputs(bulletin_warehouse: Any, bulletin: BulletinPaths) -> None:
    assert bulletin.pdf is not None
    html = bulletin.html.read_text(encoding="utf-8")
    text = subprocess.run(
        [tool("pdftotext"), str(bulletin.pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    raw = bulletin.pdf.read_bytes()
    assert "PK-SECRET" not in html and "PK-SECRET" not in text and b"PK-SECRET" not in raw
    assert "patient_key" not in html
    assert not any(key in html for key in list(bulletin_warehouse.patient_keys)[:200])


def test_alerts_ranked_and_counted(bulletin_warehouse: Any, bulletin: BulletinPaths) -> None:
    data = load_bulletin_data(
        Warehouse(bulletin_warehouse.settings.warehouse_dir), bulletin_warehouse.day
    )
    assert list(data.alerts["alert_id"]) == ["a-scan", "a-ili-age", "a-resp"]
    # a-prev-gi was not continued, a-prev-ili was; nothing has been reviewed.
    assert data.closed == ClosedCounts(
        ended=1, reviewed=0, outcomes={"true_outbreak": 0, "false_alarm": 0, "undetermined": 0}
    )
    html = bulletin.html.read_text(encoding="utf-8")
    cards = re.findall(r'<div class="n">(\d+)</div>', html)
    assert cards[1:] == ["2", "1", "1", "0"]  # new (incl. grown), ongoing, ended, reviewed
    assert "不再触发的预警" in html and "Closed by review today" in html
    assert 'class="outcomes"' not in html
    table = html.split('id="alerts"')[1].split("</section>")[0]
    order = [table.index(word) for word in ("scan", "switch", "ears_c2")]
    assert order == sorted(order)


def test_closed_by_review_counted_apart_from_ended(bulletin_warehouse: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(bulletin_warehouse.settings.home, home)
    settings = Settings(home=home)
    day = bulletin_warehouse.day
    at = dt.datetime.combine
    # On the day: the ended a-prev-gi closed as a false alarm, the ILI episode (closed
    # through today's continuing alert) as a true outbreak; a-scan only investigated.
    update_alert(settings, "a-prev-gi", status="closed", outcome="false_alarm", at=at(day, T9))
    update_alert(settings, "a-ili-age", status="closed", outcome="true_outbreak", at=at(day, T9))
    update_alert(settings, "a-scan", status="investigating", at=at(day, T9))
    # Closed the day before, its outcome corrected on the day: not closed on the day.
    yesterday = day - dt.timedelta(days=1)
    update_alert(settings, "a-resp", status="closed", outcome="false_alarm", at=at(yesterday, T9))
    update_alert(settings, "a-resp", outcome="undetermined", at=at(day, T9))
    # Closed the day after: not on the bulletin of the day.
    update_alert(settings, "a-scan", status="closed", outcome="undetermined", at=at(day, T9) + DAY1)

    data = load_bulletin_data(Warehouse(settings.warehouse_dir), day)
    assert data.closed == ClosedCounts(
        ended=1, reviewed=2, outcomes={"true_outbreak": 1, "false_alarm": 1, "undetermined": 0}
    )
    paths = render_bulletin(settings, day, tmp_path / "out", pdf=False, generated_at=GENERATED_AT)
    html = paths.html.read_text(encoding="utf-8")
    cards = re.findall(r'<div class="n">(\d+)</div>', html)
    assert cards[1:] == ["2", "1", "1", "2"]
    assert "确认暴发 true outbreak 1 · 误报 false alarm 1</div>" in html
    english = render_bulletin(settings, day, tmp_path / "en", lang="en", pdf=False)
    assert "true outbreak 1 · false alarm 1</div>" in english.html.read_text(encoding="utf-8")


def test_rank_alerts_breaks_ties_by_recurrence_then_excess() -> None:
    alerts = pd.DataFrame(
        {
            "alert_id": ["a", "b", "c", "d"],
            "severity": ["low", "high", "high", "high"],
            "recurrence_interval_days": [np.nan, np.nan, 50.0, 500.0],
            "observed": [9.0, 30.0, 10.0, 10.0],
            "upperbound": [5.0, 10.0, np.nan, np.nan],
        }
    )
    assert list(rank_alerts(alerts)["alert_id"]) == ["d", "c", "b", "a"]


def test_line_list_and_data_quality(bulletin_warehouse: Any, bulletin: BulletinPaths) -> None:
    data = load_bulletin_data(
        Warehouse(bulletin_warehouse.settings.warehouse_dir), bulletin_warehouse.day
    )
    scan = data.details[0]
    assert scan.window == (bulletin_warehouse.day - dt.timedelta(days=3), bulletin_warehouse.day)
    assert len(scan.cases) > 0 and scan.cases["syndromes"].map(lambda s: "ili" in list(s)).all()
    assert set(scan.cases["street_code"]) <= {"310105005000", "310105006000"}
    assert (data.details[1].cases["age_group"] == "5-14").all()
    assert int(scan.curve["count"].iloc[-1]) > int(scan.curve["count"].iloc[:-7].median())
    quality = data.quality.set_index("facility_id")
    assert quality.loc["F05", "flag"] == "silent" and quality.loc["F05", "visits"] == 0
    assert quality["late"].get("F03", 0) >= 1
    assert int(data.batches["quarantined"].sum()) == 3
    html = bulletin.html.read_text(encoding="utf-8")
    assert "发热咳嗽2天" in html and "J11.1" in html
    assert "unknown facility (2)" in html
    assert "通知辖区学校" not in html  # no school action for ILI/respiratory alerts
    assert "采集标本送检" in html


def test_same_input_gives_same_html(
    bulletin_warehouse: Any, bulletin: BulletinPaths, tmp_path: Path
) -> None:
    again = render_bulletin(
        bulletin_warehouse.settings,
        bulletin_warehouse.day,
        tmp_path,
        pdf=False,
        generated_at=GENERATED_AT,
    )
    assert again.html.read_bytes() == bulletin.html.read_bytes()


def test_english_only_and_bad_language(bulletin_warehouse: Any, tmp_path: Path) -> None:
    paths = render_bulletin(
        bulletin_warehouse.settings,
        bulletin_warehouse.day,
        tmp_path,
        lang="en",
        pdf=False,
        generated_at=GENERATED_AT,
    )
    html = paths.html.read_text(encoding="utf-8")
    assert (
        "Daily syndromic surveillance alert bulletin" in html and "症状监测每日预警简报" not in html
    )
    with pytest.raises(UsageError, match="lang must be one of"):
        render_bulletin(
            bulletin_warehouse.settings,
            bulletin_warehouse.day,
            tmp_path,
            lang="fr",  # type: ignore[arg-type]
            pdf=False,
        )
