"""Small-count suppression for statistics distributed outside the CDC.

The rule (also in ``docs/audiences.md``):

* **Primary suppression**: a count from 1 to ``threshold - 1`` (1–4 by default) is shown
  as :data:`SMALL` (``"<5"``). Zeros are shown as 0: an empty cell discloses nobody.
* **Complementary suppression**: where a table shows totals, a suppressed cell could be
  recovered by subtraction. When a row (column) with a shown total has exactly one
  suppressed cell, the smallest other non-zero cell of that row (column) is hidden as
  well, shown as :data:`COMPLEMENT` (``"s"``: it is not below 5, so it is not written
  ``"<5"``); when there is no such cell, the total is hidden. Repeated until stable,
  since hiding a cell in a row can leave a column with a single hidden cell.
* **Derived values** (rates, percentages, medians) computed from a hidden count are
  hidden too, as :data:`COMPLEMENT`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["COMPLEMENT", "SMALL", "suppress_small_counts"]

SMALL = "<5"
"""Shown instead of a count from 1 to 4."""
COMPLEMENT = "s"
"""Shown instead of a count or value hidden so that a small count cannot be recovered."""


def _complete_lines(values: np.ndarray, hidden: np.ndarray, total_index: int, axis: int) -> bool:
    """Hide one more cell in every line along ``axis`` that has a lone hidden cell.

    ``values``/``hidden`` are 2-D; lines are rows (``axis=1``) or columns (``axis=0``);
    ``total_index`` is the position of the total within each line. Returns whether any
    cell was hidden.
    """
    changed = False
    lines = values.shape[0] if axis == 1 else values.shape[1]
    for i in range(lines):
        vals = values[i, :] if axis == 1 else values[:, i]
        mask = hidden[i, :] if axis == 1 else hidden[:, i]
        if mask[total_index]:
            continue  # the total is hidden: nothing can be recovered by subtraction
        parts = [j for j in range(len(vals)) if j != total_index]
        if sum(bool(mask[j]) for j in parts) != 1:
            continue
        candidates = [j for j in parts if not mask[j] and vals[j] > 0]
        target = min(candidates, key=lambda j: vals[j]) if candidates else total_index
        if axis == 1:
            hidden[i, target] = True
        else:
            hidden[target, i] = True
        changed = True
    return changed


def suppress_small_counts(
    df: pd.DataFrame,
    columns: Sequence[str],
    threshold: int = 5,
    *,
    total_column: str | None = None,
    total_row: bool = False,
    derived: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Return a copy of ``df`` with small counts hidden (see the module docstring).

    Parameters
    ----------
    df : pandas.DataFrame
        A table of exact counts.
    columns : sequence of str
        The count columns to check (integers; missing values are left as they are).
    threshold : int
        Counts ``1 <= n < threshold`` are hidden; 5 by default.
    total_column : str, optional
        One of ``columns`` holding the row total of the other ``columns``; enables
        complementary suppression along rows.
    total_row : bool
        The last row holds the column totals; enables complementary suppression along
        columns.
    derived : mapping of str to sequence of str, optional
        Derived column → the count columns it was computed from; hidden when any of them
        is hidden in the same row.

    Returns
    -------
    pandas.DataFrame
        ``df`` with ``columns`` (and ``derived``) as object columns holding the original
        values, :data:`SMALL` or :data:`COMPLEMENT`. The input is not modified.

    Raises
    ------
    ValueError
        If a column is missing, ``threshold < 1`` or ``total_column`` is not in ``columns``.
    """
    if threshold < 1:
        raise ValueError(f"threshold must be at least 1, not {threshold}")
    derived = dict(derived or {})
    needed = [*columns, *derived, *(c for cs in derived.values() for c in cs)]
    missing = sorted(set(needed) - set(df.columns))
    if missing:
        raise ValueError(f"columns not in the table: {', '.join(missing)}")
    if total_column is not None and total_column not in columns:
        raise ValueError(f"total_column {total_column!r} must be one of columns")
    cols = list(columns)
    values = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    small = (values >= 1) & (values < threshold)
    hidden = small.copy()
    if len(df) and cols:
        changed = True
        while changed:
            changed = False
            if total_column is not None:
                changed |= _complete_lines(values, hidden, cols.index(total_column), axis=1)
            if total_row and len(df) > 1:
                changed |= _complete_lines(values, hidden, len(df) - 1, axis=0)
    out = df.copy()
    for j, col in enumerate(cols):
        shown = out[col].astype(object)
        shown[hidden[:, j] & ~small[:, j]] = COMPLEMENT
        shown[small[:, j]] = SMALL
        out[col] = shown
    hidden_by_col = {col: hidden[:, j] for j, col in enumerate(cols)}
    for col, sources in derived.items():
        mask = np.zeros(len(df), dtype=bool)
        for source in sources:
            if source in hidden_by_col:
                mask |= hidden_by_col[source]
        shown = out[col].astype(object)
        shown[mask] = COMPLEMENT
        out[col] = shown
    return out
