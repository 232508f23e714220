"""Candidate zones of the circular scan: coordinates, neighbour orderings and size limits.

A zone is a circle centred on a location that has grown to include its ``k`` nearest
locations (``k = 1 … K_centre``). Zones are stored flat: centre ``i`` owns the rows
``starts[i]:starts[i + 1]`` of ``members``, and the zone with ``k`` members is the prefix
``members[starts[i] : starts[i] + k]``. That layout lets the scan sum counts over every
zone of every centre with one cumulative sum (:mod:`geo.scan_stats`).

The conventions are SaTScan's (version 10.3, read from its source and checked against its
output; see ``docs/scan.md``):

- locations enter in distance order and every prefix is a candidate, even among locations
  at equal distance; distance ties go to the smaller x, then the smaller y coordinate
  (then z on the sphere, then input order), never to the id;
- a circle keeps growing while its running size stays within the limit and stops at the
  first location that would exceed it (it never skips ahead); a radius cap is inclusive;
- latitude/longitude become points on a sphere of radius 6367 km; membership and the
  radius cap use the straight-line (chord) distance between those points, and only the
  reported radius is converted to the distance along the surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "EARTH_RADIUS_KM",
    "Locations",
    "ScanInputError",
    "ZoneSet",
    "build_zones",
    "locations_from_lat_lon",
    "locations_from_xy",
    "split_zones",
]

EARTH_RADIUS_KM = 6367.0
"""SaTScan's earth radius for latitude/longitude coordinates."""

_CENTRE_CHUNK = 256
"""Centres ordered at a time: bounds the distance matrix held in memory to chunk × n."""


class ScanInputError(ValueError):
    """Input the scan cannot run on (shapes, negative counts, missing population …)."""


@dataclass(frozen=True)
class Locations:
    """Location coordinates as the scan measures them.

    Attributes
    ----------
    points : ndarray of float64, shape (n, 2) or (n, 3)
        Planar x, y in km, or 3-D points on the sphere of radius :data:`EARTH_RADIUS_KM`.
    spherical : bool
        Whether ``points`` came from latitude/longitude (distances are chords).
    """

    points: NDArray[np.float64]
    spherical: bool

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def reported_km(self, distance: NDArray[np.float64]) -> NDArray[np.float64]:
        """Convert scan distances to reported km: chords become arcs on the sphere."""
        if not self.spherical:
            return distance
        ratio = np.clip(distance / (2.0 * EARTH_RADIUS_KM), 0.0, 1.0)
        return np.asarray(2.0 * EARTH_RADIUS_KM * np.arcsin(ratio), dtype=np.float64)


def locations_from_xy(x: ArrayLike, y: ArrayLike) -> Locations:
    """Planar coordinates in kilometres (e.g. :meth:`geo.areas.AreaSet.centroids_km`)."""
    points = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    if not np.isfinite(points).all():
        raise ScanInputError("coordinates must be finite numbers")
    return Locations(points, spherical=False)


def locations_from_lat_lon(lat: ArrayLike, lon: ArrayLike) -> Locations:
    """Latitude/longitude in degrees as 3-D points on SaTScan's sphere (radius 6367 km).

    Notes
    -----
    With φ the latitude and λ the longitude in radians and R = 6367 km:
    x = R cos φ cos λ, y = R cos φ sin λ, z = R sin φ.
    """
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    if not (np.isfinite(phi).all() and np.isfinite(lam).all()):
        raise ScanInputError("latitude and longitude must be finite numbers")
    if (np.abs(phi) > np.pi / 2).any() or (np.abs(lam) > np.pi).any():
        raise ScanInputError("latitude must lie in [-90, 90] and longitude in [-180, 180]")
    r = EARTH_RADIUS_KM
    points = np.column_stack(
        [r * np.cos(phi) * np.cos(lam), r * np.cos(phi) * np.sin(lam), r * np.sin(phi)]
    )
    return Locations(points, spherical=True)


@dataclass(frozen=True)
class ZoneSet:
    """Every candidate circle, flat.

    Attributes
    ----------
    members : ndarray of intp, shape (Z,)
        Each centre's locations in entry order, truncated where the circle must stop.
    starts : ndarray of intp, shape (n + 1,)
        Centre ``i``'s zones are rows ``starts[i]:starts[i + 1]``; an empty range means the
        centre alone already breaks a limit.
    distance : ndarray of float64, shape (Z,)
        Distance from the centre to the location entering at that row (the zone's radius,
        chord on the sphere).
    """

    members: NDArray[np.intp]
    starts: NDArray[np.intp]
    distance: NDArray[np.float64]

    @property
    def n_zones(self) -> int:
        """Total number of candidate circles Z (the sum of the prefix counts)."""
        return int(self.members.size)

    @property
    def centre(self) -> NDArray[np.intp]:
        """The centre of each zone (row), shape (Z,)."""
        counts = np.diff(self.starts)
        return np.repeat(np.arange(counts.size, dtype=np.intp), counts)

    @property
    def base(self) -> NDArray[np.intp]:
        """For each row, the first row of its centre: prefix sums restart there."""
        counts = np.diff(self.starts)
        return np.repeat(self.starts[:-1], counts)


def _order_chunk(points: NDArray[np.float64], rows: slice) -> tuple[NDArray, NDArray]:
    """Entry order of every location for the centres in ``rows``, with the distances."""
    centre_points = points[rows]
    dist = np.sqrt(((centre_points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    shape = dist.shape
    # lexsort's last key is the primary one: distance, then x, then y (then z), then index.
    keys = [np.broadcast_to(np.arange(shape[1]), shape)]
    keys += [np.broadcast_to(points[:, d], shape) for d in range(points.shape[1] - 1, -1, -1)]
    order = np.lexsort([*keys, dist], axis=1)
    return order, np.take_along_axis(dist, order, axis=1)


def build_zones(
    locations: Locations,
    sizes: ArrayLike,
    *,
    max_size: float,
    max_radius: float | None = None,
) -> ZoneSet:
    """Order every location's neighbours and cut each ordering where its circle must stop.

    Parameters
    ----------
    locations : Locations
        Coordinates (planar km, or points on the sphere).
    sizes : array_like of float, shape (n,)
        Each location's size: its case total over the study period (space-time
        permutation) or its population (Poisson).
    max_size : float
        Largest running size a circle may reach (e.g. 50 % of the total size).
    max_radius : float, optional
        Largest distance from the centre (km; a chord on the sphere), inclusive.

    Returns
    -------
    ZoneSet
    """
    points = locations.points
    size = np.asarray(sizes, dtype=np.float64)
    n = len(locations)
    cap = np.inf if max_radius is None else float(max_radius)
    members: list[NDArray[np.intp]] = []
    dists: list[NDArray[np.float64]] = []
    counts = np.zeros(n, dtype=np.intp)
    for first in range(0, n, _CENTRE_CHUNK):
        rows = slice(first, min(first + _CENTRE_CHUNK, n))
        order, dist = _order_chunk(points, rows)
        running = np.cumsum(size[order], axis=1)
        allowed = (running <= max_size) & (dist <= cap)
        # a circle stops at the first location that breaks a limit, never skipping ahead
        keep = np.where(allowed.all(axis=1), n, np.argmin(allowed, axis=1))
        counts[rows] = keep
        for i in range(order.shape[0]):
            members.append(order[i, : keep[i]].astype(np.intp))
            dists.append(dist[i, : keep[i]])
    starts = np.zeros(n + 1, dtype=np.intp)
    np.cumsum(counts, out=starts[1:])
    empty_i = np.zeros(0, dtype=np.intp)
    empty_f = np.zeros(0, dtype=np.float64)
    return ZoneSet(
        members=np.concatenate(members) if members else empty_i,
        starts=starts,
        distance=np.concatenate(dists) if dists else empty_f,
    )


def split_zones(zones: ZoneSet, max_rows: int) -> list[tuple[ZoneSet, slice]]:
    """Cut a ZoneSet into runs of whole centres of at most ``max_rows`` rows (at least one
    centre each), so that replicate work stays within a memory budget.

    Returns each part (its ``starts`` rebased to 0) with the rows it covers in ``zones``.
    """
    parts: list[tuple[ZoneSet, slice]] = []
    starts = zones.starts
    first = 0
    n = starts.size - 1
    while first < n:
        last = int(np.searchsorted(starts, starts[first] + max_rows, side="right")) - 1
        last = min(max(last, first + 1), n)
        rows = slice(int(starts[first]), int(starts[last]))
        part = ZoneSet(
            members=zones.members[rows],
            starts=starts[first : last + 1] - starts[first],
            distance=zones.distance[rows],
        )
        if part.n_zones:
            parts.append((part, rows))
        first = last
    return parts
