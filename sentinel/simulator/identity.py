"""Resident identities: names, resident ID numbers, phones, addresses and homes.

A resident is the triple (street, age group, index within that pool). Everything about
them is a pure function of that triple and the seed, computed with a counter-based hash,
so the city scale needs no table of 25 million people and the same resident always gets
the same name, ID number, phone and address, whichever day they visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)

# Common surnames in rough frequency order (2020 census ranking), compound ones last.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛"
    "郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫")
GIVEN_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欣豪彬晨博文轩睿哲"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞燕玲秀英慧莹雪琳晶颖洁婷佳怡雯欣悦萱涵琪妍可馨梦露瑶倩月"
# Birthplace prefixes of ID numbers: Shanghai districts first, then common origins of migrants.
SHANGHAI_REGIONS = ("310105", "310104", "310101", "310106", "310107", "310110", "310112")
OTHER_REGIONS = (
    "320102", "320502", "330106", "340104", "410105", "420106",
    "510107", "360102", "370102", "430103", "130102", "350102",
)  # fmt: skip
PHONE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "177", "180", "181", "182", "183",
    "185", "186", "187", "188", "189", "199",
)  # fmt: skip
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK = np.array(list("10X98765432"))


def mix64(x: U64) -> U64:
    """SplitMix64 finaliser: a fast, well-mixed 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return z ^ (z >> np.uint64(31))


def derive(h: U64, salt: int) -> U64:
    """Independent hash stream ``salt`` of the resident hashes ``h``."""
    with np.errstate(over="ignore"):
        return mix64(h ^ np.uint64((salt * 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF))


def uniform(h: U64, salt: int) -> npt.NDArray[np.float64]:
    """Uniform [0, 1) numbers from hash stream ``salt``."""
    return (derive(h, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def pick(h: U64, salt: int, n: int) -> npt.NDArray[np.int64]:
    """Integers in [0, n) from hash stream ``salt``."""
    return (derive(h, salt) % np.uint64(n)).astype(np.int64)


def resident_hash(seed: int, street_idx: np.ndarray, group_idx: np.ndarray, idx: np.ndarray) -> U64:
    """Hash identifying resident ``idx`` of pool (street, age group) under ``seed``."""
    key = (
        (street_idx.astype(np.uint64) << np.uint64(44))
        ^ (group_idx.astype(np.uint64) << np.uint64(40))
        ^ idx.astype(np.uint64)
    )
    return mix64(key ^ mix64(np.full(key.shape, seed, dtype=np.uint64)))


def id_check_digits(first17: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    """ISO 7064 MOD 11-2 check characters of 17-digit ID number bodies (GB 11643)."""
    digits = np.frombuffer("".join(first17.tolist()).encode("ascii"), dtype=np.uint8)
    digits = (digits.reshape(-1, 17) - ord("0")).astype(np.int64)
    return ID_CHECK[(digits @ ID_WEIGHTS) % 11]


def is_valid_id_number(value: str) -> bool:
    """True when ``value`` is an 18-character ID number with a correct check character."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    return bool(id_check_digits(np.array([value[:17]]))[0] == value[17].upper())


@dataclass(frozen=True)
class Identities:
    """Identifier columns for a set of residents (aligned arrays)."""

    name: list[str]
    sex: npt.NDArray[np.str_]
    birth_date: npt.NDArray[np.datetime64]
    id_number: list[str]
    phone: list[str]
    unit: npt.NDArray[np.float64]
    """A uniform number per resident that chooses their address among the street's places."""


def make_identities(h: U64, age_years: npt.NDArray[np.int64], reference: date) -> Identities:
    """Names, sexes, birth dates, ID numbers and phones of residents with hashes ``h``.

    ``age_years`` is each resident's age on ``reference`` (the start of the simulation),
    so a resident keeps one birth date across the simulated period.
    """
    n = h.shape[0]
    male = uniform(h, 1) < 0.49
    sex = np.where(male, "M", "F")
    offsets = pick(h, 2, 365)
    ref = np.datetime64(reference, "D")
    birth = ref - (age_years * 365.25).astype("timedelta64[D]") - offsets.astype("timedelta64[D]")
    compound = uniform(h, 3) < 0.004
    surname_idx = np.minimum(
        (uniform(h, 4) ** 2.2 * len(SURNAMES)).astype(np.int64), len(SURNAMES) - 1
    )
    two_given = uniform(h, 5) < 0.7
    g1, g2 = pick(h, 6, 40), pick(h, 7, 40)
    names: list[str] = []
    for i in range(n):
        fam = (
            COMPOUND_SURNAMES[g1[i] % len(COMPOUND_SURNAMES)]
            if compound[i]
            else SURNAMES[surname_idx[i]]
        )
        pool = GIVEN_MALE if male[i] else GIVEN_FEMALE
        given = pool[g1[i] % len(pool)] + (pool[g2[i] % len(pool)] if two_given[i] else "")
        names.append(fam + given)
    local = uniform(h, 8) < 0.62
    region = np.where(
        local,
        np.array(SHANGHAI_REGIONS)[pick(h, 9, len(SHANGHAI_REGIONS))],
        np.array(OTHER_REGIONS)[pick(h, 10, len(OTHER_REGIONS))],
    )
    seq = pick(h, 11, 500) * 2 + np.where(male, 1, 0)  # odd sequence digit = male
    body = np.char.add(
        np.char.add(region, np.datetime_as_string(birth, unit="D").astype("U10")),
        np.char.zfill(seq.astype("U3"), 3),
    )
    body = np.char.replace(body, "-", "")
    ids = np.char.add(body, id_check_digits(body)).tolist()
    prefix = np.array(PHONE_PREFIXES)[pick(h, 12, len(PHONE_PREFIXES))]
    phones = np.char.add(prefix, np.char.zfill((pick(h, 13, 10**8)).astype("U8"), 8)).tolist()
    return Identities(
        name=names,
        sex=sex,
        birth_date=birth,
        id_number=ids,
        phone=phones,
        unit=uniform(h, 14),
    )
