"""The identifier scanner used by the privacy tests really finds planted identifiers."""

from pathlib import Path
from typing import Any

import pandas as pd
import pytest


@pytest.mark.parametrize(
    ("cell", "kwargs"),
    [
        ("联系电话13912345678", {}),
        ("身份证310105198501011234", {}),
        ("上海市长宁区茅台路1号", {"exact": {"上海市长宁区茅台路1号"}}),
        ("患者欧阳明华，发热", {"planted_names": {"欧阳明华"}}),
    ],
)
def test_scanner_catches_planted_identifiers(
    cell: str, kwargs: dict[str, set[str]], tmp_path: Path, identifier_scan: Any
) -> None:
    pd.DataFrame({"chief_complaint": [cell], "visit_key": ["a" * 64]}).to_parquet(
        tmp_path / "x.parquet"
    )
    args = {"names": set(), "exact": set(), "planted_names": set(), **kwargs}
    with pytest.raises(AssertionError):
        identifier_scan(tmp_path, **args)


def test_scanner_accepts_clean_rows_and_hex_keys(tmp_path: Path, identifier_scan: Any) -> None:
    key = "1234567890123456789012345678901234567890123456789012345678901234"  # digits-only hex
    pd.DataFrame({"chief_complaint": ["发热伴咳嗽2天"], "visit_key": [key]}).to_parquet(
        tmp_path / "x.parquet"
    )
    assert identifier_scan(tmp_path, set(), set(), set()) == 2
