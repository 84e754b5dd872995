"""Every label and word in both languages; every label a template asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recharge_service.console.i18n import LABELS, LANGUAGES, WORDS, Translator, pick_language

TEMPLATES = Path(__file__).resolve().parents[4] / "recharge_service" / "console" / "templates"
PY = TEMPLATES.parent


def test_both_languages_have_the_same_labels_and_words() -> None:
    assert set(LABELS["en"]) == set(LABELS["zh"])
    assert set(WORDS["en"]) == set(WORDS["zh"])
    for group in WORDS["en"]:
        assert set(WORDS["en"][group]) == set(WORDS["zh"][group]), group


def test_the_chinese_labels_are_chinese() -> None:
    cjk = re.compile(r"[\u4e00-\u9fff]")
    untranslated = [k for k, v in LABELS["zh"].items() if not cjk.search(v) and v == LABELS["en"][k]]
    assert untranslated == ["recon_csv"]  # "CSV" is the same word in both


def test_the_fields_of_a_label_are_the_same_in_both_languages() -> None:
    field = re.compile(r"\{(\w+)\}")
    for key, english in LABELS["en"].items():
        assert set(field.findall(english)) == set(field.findall(LABELS["zh"][key])), key


def used_labels() -> set[str]:
    found: set[str] = set()
    for path in [*TEMPLATES.glob("*.html"), *PY.rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"""\bt\(\s*["']([a-z_]+)["']""", text))
    return found


def test_every_label_a_page_asks_for_exists() -> None:
    used = used_labels()
    assert len(used) > 50
    assert sorted(used - set(LABELS["en"])) == []


def test_a_translator_fills_fields_and_shows_an_unknown_code_as_it_is() -> None:
    t = Translator("zh")
    assert t("order_title", order_no="R1") == "订单 R1"
    assert t.word("status", "MANUAL_REVIEW") == "待人工处理"
    assert t.word("reason", "SOMETHING_NEW") == "SOMETHING_NEW"
    assert Translator("fr").lang == "en"


@pytest.mark.parametrize(
    ("asked", "cookie", "accept", "chosen"),
    [
        ("zh", "en", "en-US", "zh"),
        (None, "zh", "en-US", "zh"),
        ("xx", None, "zh-CN,zh;q=0.9", "zh"),
        (None, None, "en-GB,en;q=0.8", "en"),
        (None, None, "fr-FR", "en"),
        (None, None, None, "en"),
    ],
)
def test_the_language_is_the_query_then_the_cookie_then_the_browser(
    asked: str | None, cookie: str | None, accept: str | None, chosen: str
) -> None:
    assert pick_language(asked, cookie, accept) == chosen
    assert chosen in LANGUAGES
