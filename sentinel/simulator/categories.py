"""Illness categories that generate visits: rates, age profile, seasons, codes, care paths.

Rates are visits per 100,000 residents of an age group per day at the seasonal baseline
(multiplier 1). They are sized so that the default district sees roughly 1,800–2,400
surveillance-relevant outpatient and emergency visits a day; they are plausible, not
calibrated to any real district's records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Season:
    """Seasonal multiplier: 1 + sum of Gaussian bumps over the day of year.

    ``peaks`` holds (day of year of the peak, width in days, height) triples.
    """

    peaks: tuple[tuple[float, float, float], ...] = ()

    def multiplier(
        self, day_of_year: np.ndarray, shift: float = 0.0, scale: float = 1.0
    ) -> np.ndarray:
        """Multiplier for each day of year, peaks moved by ``shift`` days and scaled."""
        out = np.ones(day_of_year.shape, dtype=np.float64)
        for centre, width, height in self.peaks:
            # circular distance, so a January peak also lifts late December
            d = np.abs(((day_of_year - centre - shift) + 182.5) % 365.0 - 182.5)
            out += scale * height * np.exp(-0.5 * (d / width) ** 2)
        return out


@dataclass(frozen=True)
class Category:
    """One illness category and how it reaches the clinics."""

    name: str
    rates: tuple[float, float, float, float, float]
    """Visits per 100,000 residents per day in age groups 0-4, 5-14, 15-24, 25-59, 60+."""
    season: Season
    emergency_share: float
    febrile_share: float
    """Share of visits with a measured temperature ≥ 38 °C when measured."""
    codes: tuple[tuple[str, str, float], ...]
    """ICD-10 (code, Chinese name, weight) choices for the first diagnosis."""
    departments: tuple[str, ...] = ("GEN",)
    syndromic: bool = True


FLU = Season(((15.0, 24.0, 3.0), (205.0, 16.0, 1.0)))
NOROVIRUS_SUMMER = Season(((345.0, 30.0, 0.6), (210.0, 28.0, 0.9)))
HFMD = Season(((140.0, 30.0, 2.6), (290.0, 20.0, 0.9)))
VARICELLA = Season(((120.0, 35.0, 0.8), (335.0, 25.0, 0.6)))
CONJUNCTIVITIS = Season(((240.0, 25.0, 1.5),))
FLAT = Season()
RESPIRATORY = Season(((20.0, 40.0, 0.9), (300.0, 25.0, 0.3)))

CATEGORIES: tuple[Category, ...] = (
    Category(
        "ili", (60, 40, 18, 10, 14), FLU, 0.25, 0.85,
        (("J11.1", "流行性感冒", 5), ("J10.1", "甲型流行性感冒", 2), ("J06.9", "急性上呼吸道感染", 4)),
        ("GEN", "PED", "FEV"),
    ),
    Category(
        "fever", (40, 15, 5, 4, 6), FLU, 0.2, 0.9,
        (("R50.9", "发热", 6), ("J06.9", "急性上呼吸道感染", 2), ("B34.9", "病毒感染", 1)),
        ("GEN", "PED", "FEV"),
    ),
    Category(
        "respiratory", (120, 60, 30, 30, 60), RESPIRATORY, 0.08, 0.05,
        (
            ("J06.9", "急性上呼吸道感染", 5), ("J02.9", "急性咽炎", 3), ("J20.9", "急性支气管炎", 3),
            ("J18.9", "肺炎", 1), ("J45.9", "支气管哮喘", 1), ("J00", "急性鼻咽炎", 2),
        ),
        ("GEN", "PED"),
    ),
    Category(
        "gastrointestinal", (50, 20, 15, 18, 22), NOROVIRUS_SUMMER, 0.15, 0.15,
        (
            ("A09.9", "感染性胃肠炎", 4), ("K52.9", "非感染性胃肠炎", 2), ("A08.1", "诺如病毒胃肠炎", 1),
            ("K29.1", "急性胃炎", 2), ("R10.4", "腹痛", 1), ("R11", "恶心和呕吐", 1),
        ),
        ("GEN", "PED", "GI"),
    ),
    Category(
        "rash", (10, 8, 3, 2, 2), VARICELLA, 0.03, 0.3,
        (("B01.9", "水痘", 3), ("R21", "皮疹", 3), ("B09", "病毒疹", 2), ("B05.9", "麻疹", 0.2)),
        ("GEN", "PED", "DER"),
    ),
    Category(
        "hfmd", (30, 3, 0.2, 0.1, 0.0), HFMD, 0.05, 0.5,
        (("B08.4", "手足口病", 8), ("B08.5", "疱疹性咽峡炎", 2)),
        ("PED", "GEN"),
    ),
    Category(
        "conjunctivitis", (3, 3, 2, 2, 2), CONJUNCTIVITIS, 0.02, 0.02,
        (("H10.3", "急性结膜炎", 5), ("B30.9", "病毒性结膜炎", 2), ("H10.9", "结膜炎", 2)),
        ("OPH", "GEN"),
    ),
    Category(
        "neurological", (2, 0.5, 0.3, 0.2, 0.5), FLAT, 0.6, 0.4,
        (("R56.8", "惊厥", 3), ("G03.9", "脑膜炎", 1), ("A87.9", "病毒性脑膜炎", 1), ("G04.9", "脑炎", 0.5)),
        ("EMR", "PED", "GEN"),
    ),
    Category(
        "jaundice", (0.1, 0.1, 0.2, 0.4, 0.5), FLAT, 0.1, 0.1,
        (("R17", "黄疸", 2), ("B15.9", "甲型病毒性肝炎", 1), ("B17.9", "急性病毒性肝炎", 1)),
        ("GEN", "GI"),
    ),
    Category(
        "injury", (20, 25, 25, 20, 15), FLAT, 0.6, 0.0,
        (("S61.0", "手指开放性伤口", 2), ("S93.4", "踝关节扭伤", 2), ("T14.0", "浅表损伤", 2), ("S52.5", "桡骨远端骨折", 1)),
        ("EMR", "GEN"), syndromic=False,
    ),
    Category(
        "chronic", (0, 0, 2, 40, 150), FLAT, 0.02, 0.0,
        (("I10", "高血压", 5), ("E11.9", "2型糖尿病", 3), ("I25.1", "冠状动脉粥样硬化性心脏病", 2), ("J44.9", "慢性阻塞性肺病", 1)),
        ("GEN",), syndromic=False,
    ),
    Category(
        "headache_dizziness", (0, 3, 8, 15, 30), FLAT, 0.15, 0.0,
        (("R51", "头痛", 3), ("R42", "头晕", 3), ("G43.9", "偏头痛", 1)),
        ("GEN",), syndromic=False,
    ),
    Category(
        "other", (60, 30, 30, 60, 80), FLAT, 0.05, 0.0,
        (
            ("M54.5", "腰痛", 3), ("N39.0", "泌尿道感染", 2), ("Z00.0", "健康体检", 2), ("L30.9", "皮炎", 2),
            ("K21.9", "胃食管反流病", 1), ("R07.4", "胸痛", 1), ("Z76.0", "开药", 2),
        ),
        ("GEN", "DER"), syndromic=False,
    ),
)  # fmt: skip

CATEGORY_INDEX = {c.name: i for i, c in enumerate(CATEGORIES)}
SYNDROMIC = tuple(c.name for c in CATEGORIES if c.syndromic)
RATES = np.array([c.rates for c in CATEGORIES], dtype=np.float64)  # (categories, age groups)
