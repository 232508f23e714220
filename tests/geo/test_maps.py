"""Offline cluster maps: PNG and SVG written, highlighted streets visible, Chinese names in
a CJK font (never empty boxes)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matplotlib import font_manager
from matplotlib.colors import to_rgb
from matplotlib.typing import ColorType
from PIL import Image

import geo.maps
from geo.areas import AreaSet, load_area_set
from geo.maps import (
    CJK_PACKAGE,
    HIGHLIGHT_EDGE,
    HIGHLIGHT_FILL,
    CJKFontError,
    find_cjk_font,
    render_cluster_map,
    render_street_map,
)

REPO = Path(__file__).resolve().parents[2]
TIANSHAN, XIANXIA, XINJING, JIANGSU = "310105006000", "310105008000", "310105102000", "310105002000"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def area() -> AreaSet:
    return load_area_set("changning")


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _count(rgb: np.ndarray, colour: ColorType, tol: int = 1) -> int:
    want = np.round(np.asarray(to_rgb(colour), dtype=float) * 255).astype(int)
    return int((np.abs(rgb - want) <= tol).all(axis=2).sum())


def _svg_texts(path: Path) -> list[ET.Element]:
    return list(ET.parse(path).getroot().iter(f"{SVG}text"))


def test_cjk_font_is_installed_and_resolved() -> None:
    font = find_cjk_font()
    assert font.path.is_file()
    assert "CJK" in font.family or "Hei" in font.family or "Han" in font.family
    resolved = font_manager.findfont(font_manager.FontProperties(family=font.family))
    assert Path(resolved) == font.path  # matplotlib draws with this file, not a fallback
    charmap = font_manager.get_font(resolved).get_charmap()
    assert all(ord(ch) in charmap for ch in "华阳路街道新泾镇仙霞新村聚集")


def test_no_cjk_font_names_the_package(
    tmp_path: Path, area: AreaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CJKFontError, match=f"install the Debian package {CJK_PACKAGE}"):
        find_cjk_font(["No Such Font Sans"])
    monkeypatch.setattr(geo.maps, "CJK_FAMILIES", ("No Such Font Sans",))
    with pytest.raises(CJKFontError, match=CJK_PACKAGE):
        render_cluster_map(area, highlight=[TIANSHAN], path=tmp_path / "m")
    assert not list(tmp_path.iterdir())


def test_text_the_font_lacks_is_refused(tmp_path: Path, area: AreaSet) -> None:
    with pytest.raises(CJKFontError, match="has no glyph for '𓀀'"):
        render_cluster_map(area, title="长宁区 𓀀", path=tmp_path / "m")
    assert not list(tmp_path.iterdir())


def test_png_shows_the_highlighted_streets(tmp_path: Path, area: AreaSet) -> None:
    png, svg = render_cluster_map(
        area, highlight=[TIANSHAN, XIANXIA], title="长宁区", path=tmp_path / "cluster", dpi=80
    )
    assert (png.name, svg.name) == ("cluster.png", "cluster.svg")
    rgb = _pixels(png)
    assert rgb.std() > 20  # not blank
    hot = _count(rgb, HIGHLIGHT_FILL)
    assert hot > 0.02 * rgb.shape[0] * rgb.shape[1]
    assert _count(rgb, HIGHLIGHT_EDGE, tol=2) > 100  # the outline
    (none,) = render_cluster_map(area, path=tmp_path / "plain", formats=["png"], dpi=80)
    assert _count(_pixels(none), HIGHLIGHT_FILL) == 0


def test_highlight_fill_follows_the_street_area(tmp_path: Path, area: AreaSet) -> None:
    """The filled pixels are the street: their ratio between two streets is the area ratio."""
    km2 = (area.projected().set_index("street_code").area / 1e6).to_dict()
    counts = {}
    for code in (XINJING, JIANGSU):
        (png,) = render_cluster_map(
            area, highlight=[code], path=tmp_path / code, formats=["png"], label=False, dpi=80
        )
        counts[code] = _count(_pixels(png), HIGHLIGHT_FILL)
    ratio = counts[XINJING] / counts[JIANGSU]
    assert ratio == pytest.approx(km2[XINJING] / km2[JIANGSU], rel=0.1)


def test_svg_keeps_chinese_names_as_text_in_the_cjk_font(tmp_path: Path, area: AreaSet) -> None:
    (svg,) = render_cluster_map(
        area,
        highlight=[TIANSHAN],
        english=True,
        title="流感样病例聚集",
        path=tmp_path / "m",
        formats=["svg"],
        svg_text="text",
    )
    texts = _svg_texts(svg)
    content = {"".join(t.itertext()) for t in texts}
    names = dict(zip(area.streets["street_code"], area.streets["name_zh"], strict=True))
    assert "流感样病例聚集" in content
    assert {"天山路街道", "Tianshanlu Subdistrict"} <= content  # the cluster, in two lines
    assert set(names.values()) <= content  # 10 streets: every one labelled
    family = find_cjk_font().family
    styles = [t.get("style", "") for t in texts]
    assert all(f"font-family: '{family}'" in s for s in styles)


def test_svg_as_outlines_still_names_the_streets(tmp_path: Path, area: AreaSet) -> None:
    (svg,) = render_cluster_map(area, highlight=[TIANSHAN], path=tmp_path / "m", formats=["svg"])
    text = svg.read_text(encoding="utf-8")
    assert not _svg_texts(svg)  # glyphs drawn as paths: looks the same without the font
    assert "<!-- 天山路街道 -->" in text  # matplotlib keeps each string as a comment
    assert 'id="label-310105006000"' in text


def test_choropleth_values_and_no_data(tmp_path: Path, area: AreaSet) -> None:
    from matplotlib import colormaps

    values = {c: float(i) for i, c in enumerate(area.codes) if c != XINJING}
    top = max(values, key=values.__getitem__)
    (png,) = render_cluster_map(
        area,
        highlight=[TIANSHAN],
        values=values,
        values_label="每万人 per 10,000",
        path=tmp_path / "v",
        formats=["png"],
        dpi=80,
    )
    rgb = _pixels(png)
    top_colour = colormaps[geo.maps.CMAP](1.0)
    assert top != TIANSHAN and _count(rgb, top_colour, tol=2) > 500
    assert _count(rgb, geo.maps.NO_DATA_FILL, tol=2) > 500  # Xinjing has no value
    assert _count(rgb, HIGHLIGHT_FILL) == 0  # hatched, not filled, over a choropleth
    assert _count(rgb, HIGHLIGHT_EDGE, tol=2) > 100


def test_bad_arguments(tmp_path: Path, area: AreaSet) -> None:
    with pytest.raises(
        ValueError, match="highlight: street codes not in area set 'changning': 999999999999"
    ):
        render_cluster_map(area, highlight=["999999999999"], path=tmp_path / "m")
    with pytest.raises(ValueError, match="formats must be among png, svg"):
        render_cluster_map(area, path=tmp_path / "m", formats=["pdf"])  # type: ignore[list-item]
    assert not list(tmp_path.iterdir())


def test_same_map_same_svg(tmp_path: Path, area: AreaSet) -> None:
    a = render_cluster_map(area, highlight=[TIANSHAN], path=tmp_path / "a", formats=["svg"])
    b = render_cluster_map(area, highlight=[TIANSHAN], path=tmp_path / "b", formats=["svg"])
    assert a[0].read_bytes() == b[0].read_bytes()


def test_street_map_zooms_to_neighbours(tmp_path: Path, area: AreaSet) -> None:
    (svg,) = render_street_map(
        area, TIANSHAN, path=tmp_path / "s", formats=["svg"], svg_text="text"
    )
    content = {"".join(t.itertext()) for t in _svg_texts(svg)}
    names = dict(zip(area.streets["street_code"], area.streets["name_zh"], strict=True))
    assert names[TIANSHAN] in content
    assert names[XINJING] not in content  # not a neighbour: outside the view
    with pytest.raises(ValueError, match="street code not in area set"):
        render_street_map(area, "1", path=tmp_path / "x")


def test_rendering_needs_no_pyplot(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from geo.areas import load_area_set; "
        "from geo.maps import render_cluster_map; "
        f"render_cluster_map(load_area_set(), highlight=['{TIANSHAN}'], path=Path(r'{tmp_path}') / 'm', dpi=50); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m.png").is_file() and (tmp_path / "m.svg").is_file()
