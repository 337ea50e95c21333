"""Chinese personal data: resident ID numbers (with their check digit), mobiles, bank cards."""

from __future__ import annotations

import pytest

from anima.dialogue.safety import PiiMasker, cn_id_ok

VALID_ID = "11010519491231002X"  # the GB 11643 example: check character X


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        (VALID_ID, True),
        ("11010519491231002x", True),
        ("110105194912310021", False),  # wrong check digit
        ("11010519491331002X", False),  # month 13
        ("1101051949123100", False),  # too short
        ("abcdefghijklmnopqr", False),
    ],
)
def test_resident_id_check_digit(number, ok):
    assert cn_id_ok(number) is ok


def test_masks_chinese_pii_next_to_hanzi_with_chinese_placeholders():
    text = f"我的身份证号是{VALID_ID}，手机13812345678，银行卡6222021234567890128。"
    masked, kinds = PiiMasker().mask(text)
    assert VALID_ID not in masked and "13812345678" not in masked
    assert "6222021234567890128" not in masked
    assert sorted(kinds) == ["card", "cn_id", "phone"]
    assert "身份证号已隐藏" in masked and "电话号码已隐藏" in masked and "hidden" not in masked


def test_mobile_with_country_code_and_spaces():
    masked, kinds = PiiMasker().mask("电话+86 138 1234 5678")
    assert kinds == ["phone"] and "138" not in masked


def test_what_is_not_pii_stays():
    masker = PiiMasker()
    for text in [
        "订单号20240315123456",
        "身份证号110105194912310021不对",
        "热线12333",
        "二楼三号窗口",
    ]:
        assert masker.mask(text) == (text, [])


def test_allowed_public_number_is_spoken():
    masker = PiiMasker(allow=["服务热线13800138000"])
    assert masker.mask("请拨打13800138000")[1] == []


def test_english_text_keeps_english_placeholders():
    masked, _ = PiiMasker().mask("Call me on 13812345678")
    assert masked == "Call me on [phone number hidden]"
