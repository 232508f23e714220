import pytest

from transform.scrub import REDACTED, scrub_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("身份证310105198501011234，发热2天", "310105198501011234"),
        ("ID 11010519491231002X fever", "11010519491231002X"),
        ("联系电话13812345678，咳嗽", "13812345678"),
        ("tel +86 138-1234-5678 cough", "1234-5678"),
        ("手机 138 1234 5678，腹泻", "1234 5678"),
        ("电话021-6234567 发热", "6234567"),
        ("家属电话021-62345678 腹泻", "62345678"),
        ("mail zhang.san@example.com cough", "zhang.san@example.com"),
        ("患者张小明，咽痛3天", "张小明"),
    ],
)
def test_identifiers_are_removed(text: str, secret: str) -> None:
    out = scrub_text(text, ["张小明"])
    assert secret not in out
    assert REDACTED in out


def test_clinical_numbers_survive() -> None:
    text = "发热T39.2℃，腹泻4次/日，血压150/90，3天"
    assert scrub_text(text, ["王"]) == text  # one-character names are not erased
