"""Residence → 12-digit street code: explicit code, point in polygon, or gazetteer match.

The order is the order of trust. An address is matched against the area set's gazetteer
(street names, road names with house-number ranges, residential compounds); a road that
crosses streets is decided by its house number, and an address that still fits several
streets, or none, stays unresolved with its reason: we never guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo.areas import AreaSet

NUMBER_AFTER = re.compile(r"^\s*(\d+)\s*(?:弄|号|號)")


@dataclass(frozen=True)
class Residence:
    """Resolved street codes and how each was found (aligned with the input rows)."""

    street_code: pd.Series
    method: pd.Series
    """``code`` | ``point`` | ``address`` | ``unresolved``."""
    reason: pd.Series
    """Why a row stayed unresolved (empty when resolved)."""


class Gazetteer:
    """Address matcher over an area set's gazetteer."""

    def __init__(self, gazetteer: pd.DataFrame) -> None:
        self.entries: dict[str, list[tuple[str, str, float, float]]] = {}
        for code, kind, name, low, high in zip(
            gazetteer["street_code"], gazetteer["kind"], gazetteer["name_zh"],
            gazetteer["number_from"], gazetteer["number_to"], strict=True,
        ):  # fmt: skip
            lo = -np.inf if pd.isna(low) else float(low)
            hi = np.inf if pd.isna(high) else float(high)
            self.entries.setdefault(str(name), []).append((str(code), str(kind), lo, hi))
        names = sorted(self.entries, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(n) for n in names)) if names else None

    def match(self, address: str) -> tuple[str | None, str]:
        """Street code for one address, or (None, reason)."""
        if not address or self.pattern is None:
            return None, "no address"
        found: dict[str, set[str]] = {"compound": set(), "road": set(), "street": set()}
        undecided = False
        for m in self.pattern.finditer(address):
            number_match = NUMBER_AFTER.match(address[m.end() :])
            number = float(number_match.group(1)) if number_match else None
            for code, kind, lo, hi in self.entries[m.group(0)]:
                split_road = kind == "road" and len(self.entries[m.group(0)]) > 1
                if split_road and (number is None or not (lo <= number <= hi)):
                    undecided = True
                    continue
                found.setdefault(kind, set()).add(code)
        for kind in ("compound", "road", "street"):
            codes = found.get(kind, set())
            if len(codes) == 1:
                return next(iter(codes)), ""
            if len(codes) > 1:
                return None, f"address fits several streets ({kind})"
        if undecided:
            return None, "road crosses streets and the house number does not decide"
        return None, "address not in gazetteer"


def resolve_residence(
    raw: pd.DataFrame, area: AreaSet, gazetteer: Gazetteer | None = None
) -> Residence:
    """Resolve each row's street from ``residence_code``, then ``lat``/``lon``, then ``address``."""
    n = len(raw)
    codes = pd.Series([None] * n, index=raw.index, dtype="str")
    method = pd.Series(["unresolved"] * n, index=raw.index, dtype="str")
    reason = pd.Series([""] * n, index=raw.index, dtype="str")
    known = set(area.codes)
    explicit = raw["residence_code"].astype("str").str.strip()
    ok = explicit.isin(known)
    codes[ok] = explicit[ok]
    method[ok] = "code"
    bad_code = raw["residence_code"].notna() & ~ok & (explicit != "")
    reason[bad_code] = "residence code not in the area set"
    todo = ~ok & raw["lat"].notna() & raw["lon"].notna()
    if todo.any():
        points = area.locate(
            raw.loc[todo, "lat"].to_numpy(float), raw.loc[todo, "lon"].to_numpy(float)
        )
        located = pd.Series(points, index=raw.index[todo.to_numpy()], dtype="str")
        hit = located.notna()
        codes[hit[hit].index] = located[hit]
        method[hit[hit].index] = "point"
        reason[hit[~hit].index] = "coordinates outside every street"
    todo = (method == "unresolved") & raw["address"].notna()
    if todo.any():
        gaz = gazetteer or Gazetteer(area.gazetteer)
        addresses = raw.loc[todo, "address"].astype("str")
        cache = {a: gaz.match(a) for a in addresses.unique()}
        found = addresses.map(lambda a: cache[a][0])
        why = addresses.map(lambda a: cache[a][1])
        hit = found.notna()
        codes[hit[hit].index] = found[hit]
        method[hit[hit].index] = "address"
        reason[hit[~hit].index] = why[~hit]
    reason[(method == "unresolved") & (reason == "")] = "no residence information"
    return Residence(codes, method, reason)
