import pytest

from service.ingest.dedup import fingerprint, similarity
from service.ingest.language import LanguageDetector
from service.ingest.normalize import dedup_key, normalize_text, text_hash
from service.ingest.pii import PiiMode, redact


def test_normalize_keeps_what_was_written_but_cleans_whitespace():
    assert (
        normalize_text("\ufeff  Great\u200b taste!\r\n\r\n  包装　很好  ")
        == "Great taste!\n包装 很好"
    )


def test_dedup_key_ignores_width_case_space_and_punctuation():
    assert dedup_key("Ｔｈｅ BOX, arrived crushed!!") == dedup_key("the box arrived crushed")
    assert text_hash("太辣了！") == text_hash("太辣了")


@pytest.mark.parametrize(
    "text,kind",
    [
        ("mail me at li.wei@example.com please", "EMAIL"),
        ("我的电话13812345678", "PHONE"),
        ("call +86 138 1234 5678 today", "PHONE"),
        ("call me on (415) 555-0134", "PHONE"),
        ("ID 11010519491231002X here", "ID"),
        ("card 4111 1111 1111 1111 charged twice", "CARD"),
    ],
)
def test_redaction_finds_personal_data(text, kind):
    out, found = redact(text)
    assert f"[{kind}]" in out and found.get(kind) == 1


def test_redaction_leaves_ordinary_numbers_and_checks_luhn_and_id_checksum():
    text = "order 4111 1111 1111 1112 arrived in 3 days, batch 110105194912310021"
    out, found = redact(text)
    assert out == text and found == {}


def test_mask_mode_keeps_ends():
    out, _ = redact("write to li.wei@example.com", PiiMode.mask)
    assert "li" in out and "om" in out and "*" in out and "li.wei@example.com" not in out
    assert redact("li.wei@example.com", PiiMode.keep)[0] == "li.wei@example.com"


@pytest.mark.parametrize(
    "text,lang",
    [
        ("The box arrived crushed and the noodles were everywhere", "en"),
        ("味道太辣了，吃不下去", "zh"),
        ("这个 app 很好用 but 有点慢", "zh"),
        ("La sopa estaba demasiado picante", "es"),
        ("Die Lieferung kam viel zu spät", "de"),
        ("12345 !!!", "und"),
    ],
)
def test_language_detection(text, lang):
    assert LanguageDetector().detect(text) == lang


def test_near_duplicates_are_similar_and_different_texts_are_not():
    a = fingerprint("The cup was cracked and the soup leaked all over my bag, really disappointed.")
    b = fingerprint(
        "@NoodleKing The cup was cracked and the soup leaked all over my bag, really disappointed 😡"
    )
    c = fingerprint("Delivery was super fast and the noodles taste great, will buy again for sure.")
    assert similarity(a.signature, b.signature) >= 0.8
    assert similarity(a.signature, c.signature) < 0.3
    assert set(a.bands) & set(b.bands)
    assert fingerprint("great product") is None  # too short to call a copy
