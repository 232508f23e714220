from datetime import date

import numpy as np

from sentinel.simulator import identity as ident


def _ids(n: int = 2000, seed: int = 3) -> tuple[np.ndarray, ident.Identities, np.ndarray]:
    idx = np.arange(n)
    h = ident.resident_hash(seed, idx % 10, idx % 5, idx)
    ages = (idx % 90).astype(np.int64)
    return h, ident.make_identities(h, ages, date(2025, 1, 1)), ages


def test_id_numbers_have_valid_check_digits_and_encode_birth_and_sex() -> None:
    _, ids, _ = _ids()
    for number, sex, birth in zip(ids.id_number, ids.sex, ids.birth_date, strict=True):
        assert ident.is_valid_id_number(number), number
        assert number[6:14] == str(birth).replace("-", "")
        assert (int(number[16]) % 2 == 1) == (sex == "M")


def test_check_digit_matches_published_example() -> None:
    # GB 11643-1999 worked example
    assert ident.id_check_digits(np.array(["11010519491231002"]))[0] == "X"
    assert not ident.is_valid_id_number("110105194912310021")


def test_ages_are_consistent_with_birth_dates() -> None:
    _, ids, ages = _ids()
    ref = np.datetime64("2025-01-01")
    years = (ref - ids.birth_date).astype(np.int64) / 365.25
    assert np.all(np.floor(years) >= ages - 1)
    assert np.all(years < ages + 2)


def test_same_resident_same_identity_and_phones_look_mobile() -> None:
    h, ids, ages = _ids()
    again = ident.make_identities(h, ages, date(2025, 1, 1))
    assert again.name == ids.name and again.id_number == ids.id_number and again.phone == ids.phone
    assert all(len(p) == 11 and p.startswith("1") and p.isdigit() for p in ids.phone)
    assert len(set(ids.id_number)) > 1990  # distinct people


def test_names_are_chinese_with_known_surnames() -> None:
    _, ids, _ = _ids()
    surnames = set(ident.SURNAMES) | set(ident.COMPOUND_SURNAMES)
    for name in ids.name:
        assert 2 <= len(name) <= 4
        assert name[0] in surnames or name[:2] in surnames
