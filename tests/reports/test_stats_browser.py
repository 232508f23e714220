"""The leaders' brief rendered for real (both audiences): Chromium screenshot and DOM
probe, PDF pages and text layer, and the rate map's colour scale on realistic rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from geo.areas import load_area_set
from geo.maps import CMAP, render_cluster_map
from reports.stats import StatsPaths, build_tables, render_stats
from reports.stats_tables import period_of
from tests.reports.browser import check_page, non_blank, pdf_pages, pdf_text, screenshot
from warehouse.store import Warehouse

AUDIENCES = ("public", "internal")
AUDIENCE_MARK = {"public": "对外 Public", "internal": "内部 Internal"}


@pytest.fixture(scope="module")
def briefs(
    bulletin_warehouse: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, StatsPaths]:
    out = tmp_path_factory.mktemp("briefs")
    return {
        audience: render_stats(
            bulletin_warehouse.settings,
            period="week",
            end=bulletin_warehouse.day,
            audience=audience,  # type: ignore[arg-type]
            out_dir=out / audience,
        )
        for audience in AUDIENCES
    }


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _count(rgb: np.ndarray, colour: Any, tol: int = 1) -> int:
    want = np.round(np.asarray(to_rgb(colour), dtype=float) * 255).astype(int)
    return int((np.abs(rgb - want) <= tol).all(axis=2).sum())


def test_probe_sees_a_broken_image_and_a_console_error(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><p>测试</p>'
        '<img src="data:image/png;base64,AAAA"><img src="missing.png">'
        '<script>console.error("boom")</script></body></html>',
        encoding="utf-8",
    )
    seen = check_page(page, tmp_path)
    assert (seen.images, seen.broken) == (2, 2)
    assert "error: boom" in seen.errors and any("missing.png" in e for e in seen.errors)
    assert any("boom" in line for line in screenshot(page, tmp_path / "bad.png"))


@pytest.mark.parametrize("audience", AUDIENCES)
def test_chromium_renders_without_errors_or_broken_images(
    briefs: dict[str, StatsPaths], audience: str, tmp_path: Path
) -> None:
    page = briefs[audience].html
    shot = tmp_path / "shot.png"
    assert screenshot(page, shot, width=1100, height=1600) == []
    assert non_blank(shot)
    assert Image.open(shot).size == (1100, 1600)
    seen = check_page(page, tmp_path)
    assert seen == type(seen)(images=1, broken=0, errors=())  # the map, decoded


@pytest.mark.parametrize("audience", AUDIENCES)
def test_pdf_pages_are_non_blank_with_chinese_text(
    bulletin_warehouse: Any, briefs: dict[str, StatsPaths], audience: str, tmp_path: Path
) -> None:
    pdf = briefs[audience].pdf
    pages = pdf_pages(pdf, tmp_path)
    assert len(pages) >= 2 and all(non_blank(p) for p in pages)
    text = pdf_text(pdf)
    for words in (
        "传染病症状监测统计简报",
        "按居住街道的就诊人次",
        "每万人就诊率地图",
        "数据质量评分",
        AUDIENCE_MARK[audience],
        *bulletin_warehouse.street_names.values(),
    ):
        assert words in text, words
    other = next(a for a in AUDIENCES if a != audience)
    assert AUDIENCE_MARK[other] not in text


def test_rate_map_spans_the_observed_rates(
    bulletin_warehouse: Any, briefs: dict[str, StatsPaths], tmp_path: Path
) -> None:
    """No street is near 0 visits per 10,000: the colours run from the lowest street."""
    settings, day = bulletin_warehouse.settings, bulletin_warehouse.day
    exact = build_tables(Warehouse(settings.warehouse_dir), period_of("week", day))
    street = next(t.frame for t in exact if t.name == "visits_by_street").iloc[:-1]
    rates = street.set_index("street_code")["rate_per_10k"].astype(float)
    assert rates.min() > 0.3 * rates.max()  # the case the observed scale is for
    cmap = mpl.colormaps[CMAP]
    bottom, top = cmap(0.0), cmap(1.0)
    shown = _pixels(briefs["public"].html.parent / "rate_map.png")
    # the lowest and the highest street are filled with the two ends of the scale
    assert _count(shown, bottom) > 2000 and _count(shown, top) > 2000
    from_zero = render_cluster_map(
        load_area_set("changning"),
        values=rates.to_dict(),
        path=tmp_path / "zero",
        formats=("png",),
        dpi=110,
    )[0]
    assert _count(_pixels(from_zero), bottom) < 200  # only the colour bar's end
    page = briefs["public"].html.read_text(encoding="utf-8")
    names = street.set_index("street_code")["name_zh"]
    low, high = rates.idxmin(), rates.idxmax()
    assert f"最低的{names[low]}（{rates[low]:,.1f}）" in page
    assert f"最高的{names[high]}（{rates[high]:,.1f}）" in page
    assert "hatched grey = suppressed" not in page  # no street is suppressed here
