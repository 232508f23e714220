"""Static, offline maps of an area set: cluster choropleths with Chinese labels.

The bulletin shows *which streets* hold a cluster, so a map is the street polygons
(optionally coloured by a value such as cases per 10,000), the cluster's streets outlined
and labelled with their Chinese names, a legend and a scale bar, drawn in the set's metric
CRS so kilometres are true. Nothing is fetched: no tiles, no web fonts, no scripts.

Chinese text needs a CJK font (Debian: ``fonts-noto-cjk``). :func:`find_cjk_font` picks
one through matplotlib's font manager and raises :class:`CJKFontError` naming the package
when there is none, and every label is checked against the font's character map before
drawing, so a map never silently shows empty boxes (tofu) instead of street names.
Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas, not pyplot.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import matplotlib as mpl
import numpy as np
import shapely
from matplotlib import font_manager, patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PathCollection
from matplotlib.colors import Normalize, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.path import Path as MplPath

from geo.areas import AreaSet

__all__ = [
    "CJK_FAMILIES",
    "CJK_PACKAGE",
    "HIGHLIGHT_EDGE",
    "HIGHLIGHT_FILL",
    "CJKFont",
    "CJKFontError",
    "MapFormat",
    "ValueScale",
    "find_cjk_font",
    "render_cluster_map",
    "render_street_map",
]

MapFormat = Literal["png", "svg"]
ValueScale = Literal["zero", "observed"]
"""Colour scale of a choropleth: from 0 (or the lowest value, if negative) to the highest
(``zero``), or from the lowest to the highest value drawn (``observed``), which shows the
differences between streets whose values are all far from 0."""
SvgText = Literal["path", "text"]
"""SVG text as glyph outlines (``path``: looks the same everywhere) or ``<text>``
elements naming the font (``text``: searchable, needs the font where it is viewed)."""

CJK_PACKAGE = "fonts-noto-cjk"
CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK TC",
    "Noto Sans CJK JP",
)
"""Fonts tried in order; simplified-Chinese faces first."""

BASE_FILL = "#e6e6e6"
NO_DATA_FILL = "#bdbdbd"
SUPPRESSED_FILL = "#f2f2f2"
SUPPRESSED_HATCH = "#7f7f7f"
"""Suppressed streets: light grey cross-hatched in dark grey, unlike plain grey "no data"."""
HIGHLIGHT_FILL = "#e4572e"
"""Fill of cluster streets on a map without values (tests look for it in the PNG)."""
HIGHLIGHT_EDGE = "#7a0019"
"""Outline (and hatching over a choropleth) of cluster streets."""
CMAP = "YlOrRd"
MAX_CONTEXT_LABELS = 30
"""Other streets are labelled (small, grey) only when at most this many are in view."""
APPROXIMATE_NOTES: Mapping[str, str] = {
    "changning": "边界与人口为近似示意 · boundaries and populations approximate",
    "city": "合成城市（模拟）· synthetic city (simulated)",
}
_SVG_FONTTYPE: Mapping[SvgText, str] = {"path": "path", "text": "none"}
_LEGEND: Mapping[str, str] = {
    "hot": "聚集街道 cluster streets",
    "other": "其他街道 other streets",
    "none": "无数据 no data",
    "suppressed": "已抑制 suppressed",
}
_WIDTH_IN = 8.0


class CJKFontError(RuntimeError):
    """No installed font can draw the Chinese text of a map."""


@dataclass(frozen=True)
class CJKFont:
    """A CJK font found by matplotlib: family name, file and face index in the file."""

    family: str
    path: Path
    index: int = 0


def find_cjk_font(families: Sequence[str] | None = None) -> CJKFont:
    """The first installed font of ``families``, as matplotlib resolves it.

    Parameters
    ----------
    families : sequence of str, optional
        Family names to try in order; :data:`CJK_FAMILIES` by default.

    Returns
    -------
    CJKFont

    Raises
    ------
    CJKFontError
        If none is installed; the message names the Debian package to install.
    """
    families = CJK_FAMILIES if families is None else families
    for family in families:
        try:
            found = font_manager.findfont(
                font_manager.FontProperties(family=family), fallback_to_default=False
            )
        except ValueError:
            continue
        return CJKFont(family, Path(found), int(getattr(found, "face_index", 0)))
    raise CJKFontError(
        f"no CJK font for Chinese map labels (tried {', '.join(families)}); install the "
        f"Debian package {CJK_PACKAGE} (apt-get install -y {CJK_PACKAGE}) and delete "
        f"matplotlib's font cache ({mpl.get_cachedir()}/fontlist-*.json)"
    )


def _check_glyphs(font: CJKFont, texts: Sequence[str]) -> None:
    """Refuse to draw text the font cannot show (it would come out as empty boxes)."""
    found = font_manager.findfont(font_manager.FontProperties(family=font.family))
    charmap = font_manager.get_font(found).get_charmap()
    needed = {ch for text in texts for ch in text if not ch.isspace()}
    missing = sorted(ch for ch in needed if ord(ch) not in charmap)
    if missing:
        raise CJKFontError(
            f"font {font.family} ({font.path}) has no glyph for {''.join(missing)!r}; "
            f"install {CJK_PACKAGE} or choose other text"
        )


def _path_of(geom: shapely.Geometry) -> MplPath:
    """A matplotlib path of a (multi)polygon, holes included (even-odd filled)."""
    rings = []
    for polygon in shapely.get_parts(geom):
        for ring in (polygon.exterior, *polygon.interiors):
            xy = np.asarray(ring.coords)[:, :2]
            codes = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
            codes[0], codes[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            rings.append(MplPath(xy, codes))
    return MplPath.make_compound_path(*rings)


def _nice_length(span_km: float) -> float:
    """A 1-2-5 length of about a fifth of the map width, for the scale bar."""
    raw = span_km / 5.0
    power = 10.0 ** math.floor(math.log10(raw))
    return max(f * power for f in (1.0, 2.0, 5.0) if f * power <= raw)


def _draw_scale_bar(ax: Axes, x0: float, x1: float, y0: float, y1: float) -> None:
    length = _nice_length(x1 - x0)
    left, bottom = x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0)
    height = 0.012 * (y1 - y0)
    for i, colour in enumerate(("#222222", "white")):  # two halves, as on survey maps
        ax.add_patch(
            Rectangle(
                (left + i * length / 2, bottom),
                length / 2,
                height,
                facecolor=colour,
                edgecolor="#222222",
                linewidth=0.8,
                zorder=6,
            )
        )
    ax.text(
        left + length / 2,
        bottom + 2 * height,
        f"{length:g} km",
        ha="center",
        va="bottom",
        fontsize=8,
        zorder=6,
    )
    ax.annotate(
        "N",
        xy=(0.96, 0.97),
        xytext=(0.96, 0.88),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=9,
        arrowprops={"arrowstyle": "-|>", "color": "#222222"},
        zorder=6,
    )


@dataclass(frozen=True)
class _Sheet:
    """What to draw, in kilometres of the set's metric CRS."""

    codes: list[str]
    paths: list[MplPath]
    hot: list[str]
    labels: dict[str, str]  # code -> label, cluster streets first
    anchors: dict[str, tuple[float, float]]  # a point inside each street, for its label
    view: tuple[float, float, float, float]  # x0, y0, x1, y1


def _layout(
    area: AreaSet, highlight: Sequence[str], focus: Sequence[str], *, label: bool, english: bool
) -> _Sheet:
    codes = area.codes
    proj = area.projected().set_index("street_code").loc[codes]
    geoms = shapely.transform(proj.geometry.to_numpy(), lambda xy: xy / 1000.0)  # km
    names = dict(zip(codes, proj["name_zh"].astype("str"), strict=True))
    names_en = dict(zip(codes, proj["name_en"].astype("str"), strict=True))
    hot = [c for c in codes if c in set(highlight)]
    shown = geoms[np.isin(codes, list(focus))] if focus else geoms
    x0, y0, x1, y1 = shapely.bounds(shapely.GeometryCollection(list(shown)))
    pad = 0.06 * max(x1 - x0, y1 - y0, 0.5)
    view = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    anchor = shapely.point_on_surface(geoms)
    lx, ly = shapely.get_x(anchor), shapely.get_y(anchor)
    inner = shapely.box(*view).buffer(-0.1 * min(x1 - x0, y1 - y0))  # labels not cut off
    context = [c for c, v in zip(codes, shapely.intersects_xy(inner, lx, ly), strict=True) if v and c not in set(hot)]  # fmt: skip
    if len(context) + len(hot) > MAX_CONTEXT_LABELS or not label:
        context = []
    # English only under the cluster's names: under every name the labels would collide.
    labels = {c: names[c] + (f"\n{names_en[c]}" if english else "") for c in hot} if label else {}
    labels.update({c: names[c] for c in context})
    return _Sheet(
        codes=codes,
        paths=[_path_of(g) for g in geoms],
        hot=hot,
        labels=labels,
        anchors={c: (float(x), float(y)) for c, x, y in zip(codes, lx, ly, strict=True)},
        view=view,
    )


def _value_range(numbers: np.ndarray, scale: ValueScale) -> tuple[float, float]:
    """Ends of the colour scale for the finite ``numbers`` (never an empty interval)."""
    known = numbers[np.isfinite(numbers)]
    if not known.size:
        return 0.0, 1.0
    low, high = float(known.min()), float(known.max())
    if scale == "zero":
        low = min(0.0, low)
    if high - low < 1e-9:  # one value (or all equal): centre it on the scale
        pad = 0.05 * abs(high) or 1.0
        low, high = (low, high + pad) if scale == "zero" else (low - pad, high + pad)
    return low, high


def _draw_streets(
    fig: Figure,
    ax: Axes,
    sheet: _Sheet,
    values: Mapping[str, float] | None,
    values_label: str,
    scale: ValueScale = "zero",
    suppressed: Sequence[str] = (),
) -> list[Patch]:
    """Fill every street (flat or by value), outline the cluster; return legend entries."""
    handles = []
    # Over a choropleth the cluster is hatched, so its streets keep their colour.
    hatch = None if values is None else "///"
    face = HIGHLIGHT_FILL if values is None else "none"
    if sheet.hot:
        handles.append(Patch(facecolor=face, edgecolor=HIGHLIGHT_EDGE, hatch=hatch, linewidth=2.0, label=_LEGEND["hot"]))  # fmt: skip
    if values is None:
        fill = [BASE_FILL] * len(sheet.codes)
        handles.append(Patch(facecolor=BASE_FILL, edgecolor="#999999", label=_LEGEND["other"]))
    else:
        numbers = np.array([values.get(c, np.nan) for c in sheet.codes], dtype=float)
        known = np.isfinite(numbers)
        mappable = ScalarMappable(
            norm=Normalize(*_value_range(numbers, scale)), cmap=mpl.colormaps[CMAP]
        )
        rgba = mappable.to_rgba(np.nan_to_num(numbers))
        fill = [to_hex(tuple(c)) if k else NO_DATA_FILL for c, k in zip(rgba, known, strict=True)]
        if (~known & ~np.isin(sheet.codes, list(suppressed))).any():
            handles.append(Patch(facecolor=NO_DATA_FILL, edgecolor="#999999", label=_LEGEND["none"]))  # fmt: skip
        fig.colorbar(mappable, ax=ax, shrink=0.7, label=values_label)
    if suppressed:
        handles.append(Patch(facecolor=SUPPRESSED_FILL, edgecolor="#999999", hatch="xx", hatchcolor=SUPPRESSED_HATCH, label=_LEGEND["suppressed"]))  # fmt: skip
    ax.add_collection(PathCollection(sheet.paths, facecolors=fill, edgecolors="white", linewidths=0.8, zorder=1))  # fmt: skip
    if suppressed:
        hidden = [sheet.paths[sheet.codes.index(c)] for c in sheet.codes if c in set(suppressed)]
        ax.add_collection(PathCollection(hidden, facecolors=SUPPRESSED_FILL, edgecolors="white", linewidths=0.8, hatch="xx", hatchcolor=SUPPRESSED_HATCH, zorder=2))  # fmt: skip
    if sheet.hot:
        hot_paths = [sheet.paths[sheet.codes.index(c)] for c in sheet.hot]
        ax.add_collection(PathCollection(hot_paths, facecolors=face, edgecolors=HIGHLIGHT_EDGE, linewidths=2.0, hatch=hatch, zorder=3))  # fmt: skip
    return handles


def _draw_labels(ax: Axes, sheet: _Sheet) -> None:
    # The white halo is a separate text drawn only as a stroke underneath: text with
    # path effects becomes outlines, and the names must stay text in the SVG.
    halo = [patheffects.Stroke(linewidth=3, foreground="white")]
    for code, text in sheet.labels.items():
        strong = code in sheet.hot
        x, y = sheet.anchors[code]
        style: dict[str, Any] = {
            "ha": "center",
            "va": "center",
            "clip_on": True,
            "fontsize": 10 if strong else 7,
            "fontweight": "bold" if strong else "normal",
        }
        ax.text(x, y, text, zorder=4, path_effects=halo, color="white", **style)
        colour = "#111111" if strong else "#555555"
        ax.text(x, y, text, zorder=5, color=colour, gid=f"label-{code}", **style)


def render_cluster_map(
    area: AreaSet,
    *,
    highlight: Sequence[str] = (),
    values: Mapping[str, float] | None = None,
    title: str = "",
    path: Path,
    formats: Sequence[MapFormat] = ("png", "svg"),
    label: bool = True,
    english: bool = False,
    values_label: str = "",
    scale: ValueScale = "zero",
    suppressed: Sequence[str] = (),
    focus: Sequence[str] = (),
    note: str | None = None,
    dpi: int = 150,
    svg_text: SvgText = "path",
) -> list[Path]:
    """Draw the streets of an area set with cluster streets highlighted and labelled.

    Parameters
    ----------
    area : AreaSet
        The streets to draw (in :attr:`AreaSet.metric_crs`, kilometres).
    highlight : sequence of str
        Street codes of the cluster: thick dark outline, filled with
        :data:`HIGHLIGHT_FILL` (no ``values``) or hatched over the choropleth colour.
    values : mapping of str to float, optional
        A value per street code (e.g. cases per 10,000) coloured on a sequential scale
        with a colour bar; streets without a finite value are drawn grey as "no data".
    title : str
        Title above the map (Chinese allowed).
    path : Path
        Output path; each format replaces its suffix (``map`` → ``map.png``, ``map.svg``).
    formats : sequence of {"png", "svg"}
        Files to write.
    label : bool
        Label cluster streets with their Chinese names (bold); when at most
        :data:`MAX_CONTEXT_LABELS` streets are in view, the others get small grey labels.
    english : bool
        Add the English name under the Chinese one.
    values_label : str
        Caption of the colour bar.
    scale : {"zero", "observed"}
        Colour scale of ``values``: from 0 to the highest value (default), or over the
        observed range, lowest to highest (see :data:`ValueScale`).
    suppressed : sequence of str
        Street codes whose value is withheld (small-count suppression): drawn light grey,
        cross-hatched, with a legend entry "已抑制 suppressed", never coloured as a value
        or as "no data". They must not be in ``values``.
    focus : sequence of str
        Zoom to these streets (with a margin) instead of the whole set.
    note : str, optional
        Footnote; by default the set's caveat from :data:`APPROXIMATE_NOTES`, if any.
    dpi : int
        Resolution of the PNG.
    svg_text : {"path", "text"}
        Text in the SVG as glyph outlines (portable) or as ``<text>`` elements.

    Returns
    -------
    list of Path
        The files written, in ``formats`` order.

    Raises
    ------
    ValueError
        On unknown street codes in ``highlight``, ``values``, ``suppressed`` or ``focus``,
        a street both in ``values`` and ``suppressed``, an unknown format or scale.
    CJKFontError
        If no CJK font is installed, or it lacks a glyph of the text.
    """
    codes = area.codes
    given_sets = (
        ("highlight", highlight),
        ("values", values or {}),
        ("suppressed", suppressed),
        ("focus", focus),
    )
    for what, given in given_sets:
        unknown = sorted(set(given) - set(codes))
        if unknown:
            raise ValueError(
                f"{what}: street codes not in area set {area.name!r}: {', '.join(unknown[:10])}"
            )
    bad_formats = [f for f in formats if f not in get_args(MapFormat)]
    if bad_formats or not formats:
        raise ValueError(f"formats must be among {', '.join(get_args(MapFormat))}: {bad_formats}")
    both = sorted(set(values or {}) & set(suppressed))
    if both:
        raise ValueError(f"streets both in values and suppressed: {', '.join(both[:10])}")
    if scale not in get_args(ValueScale):
        raise ValueError(f"scale must be zero or observed, not {scale!r}")
    if svg_text not in _SVG_FONTTYPE:
        raise ValueError(f"svg_text must be path or text, not {svg_text!r}")

    sheet = _layout(area, highlight, focus, label=label, english=english)
    footnote = APPROXIMATE_NOTES.get(area.name, "") if note is None else note
    font = find_cjk_font()
    _check_glyphs(font, [title, values_label, footnote, *_LEGEND.values(), *sheet.labels.values()])
    rc = {
        "font.family": [font.family],
        "axes.unicode_minus": False,
        "svg.fonttype": _SVG_FONTTYPE[svg_text],
        "svg.hashsalt": "sentinel-map",  # stable ids: the same map gives the same SVG
        "hatch.color": HIGHLIGHT_EDGE,
        "hatch.linewidth": 1.2,
    }
    x0, y0, x1, y1 = sheet.view
    height = min(max(_WIDTH_IN * (y1 - y0) / (x1 - x0), 3.5), 11.0) + (0.6 if title else 0.0)
    path = Path(path)
    written = []
    with mpl.rc_context(rc), warnings.catch_warnings():  # type: ignore[arg-type]
        # A glyph matplotlib cannot find would be drawn as a box; make that an error.
        warnings.filterwarnings("error", message=r"Glyph .* missing from", category=UserWarning)
        fig = Figure(figsize=(_WIDTH_IN, height), dpi=dpi, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        handles = _draw_streets(fig, ax, sheet, values, values_label, scale, suppressed)
        _draw_labels(ax, sheet)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_axis_off()
        if title:
            ax.set_title(title, fontsize=13)
        _draw_scale_bar(ax, x0, x1, y0, y1)
        legend = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=len(handles), frameon=False, fontsize=9)  # fmt: skip
        if footnote:  # just under the legend; the tight bounding box takes it in
            ax.annotate(footnote, xy=(0.5, 0.0), xycoords=legend, xytext=(0, -2), textcoords="offset points", ha="center", va="top", fontsize=7, color="#666666", annotation_clip=False)  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            out = path.with_suffix(f".{fmt}")
            try:
                fig.savefig(out, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.15, metadata={"Date": None} if fmt == "svg" else None)  # fmt: skip
            except UserWarning as exc:
                raise CJKFontError(f"{out}: {exc}; install {CJK_PACKAGE}") from exc
            written.append(out)
    return written


def render_street_map(
    area: AreaSet,
    street_code: str,
    *,
    path: Path,
    title: str = "",
    formats: Sequence[MapFormat] = ("png", "svg"),
    english: bool = False,
    zoom: bool = True,
    note: str | None = None,
    dpi: int = 150,
    svg_text: SvgText = "path",
) -> list[Path]:
    """Draw one street highlighted among its neighbours (for a bulletin's street alert).

    Parameters
    ----------
    area : AreaSet
        The area set.
    street_code : str
        The street to highlight and label.
    path, title, formats, english, note, dpi, svg_text
        As in :func:`render_cluster_map`.
    zoom : bool
        Show the street and its queen neighbours only (useful in a city of 215 streets);
        otherwise the whole set.

    Returns
    -------
    list of Path
        The files written.
    """
    if street_code not in set(area.codes):
        raise ValueError(f"street code not in area set {area.name!r}: {street_code}")
    focus = [street_code, *area.adjacency()[street_code]] if zoom else []
    return render_cluster_map(
        area,
        highlight=[street_code],
        title=title,
        path=path,
        formats=formats,
        english=english,
        focus=focus,
        note=note,
        dpi=dpi,
        svg_text=svg_text,
    )
