"""`radar score`-level behaviour on a file mixing languages (the real default pipeline)."""

import csv
import json

import pytest

from service.ingest.language import LanguageDetector
from service.jobs.score_file import score_file

CLEAR = [
    ("en", "Absolutely delicious, the best noodles I have ever had!", "positive"),
    ("en", "Terrible. The soup was cold and it made me sick.", "negative"),
    ("zh", "太好吃了，全家都很喜欢，还会回购！", "positive"),
    ("zh", "太难吃了，还有异味，非常失望。", "negative"),
    ("es", "¡Riquísimo! Me encanta, lo volveré a comprar.", "positive"),
    ("es", "Horrible, llegó roto y sabe fatal.", "negative"),
    ("de", "Sehr lecker, absolut empfehlenswert!", "positive"),
    ("de", "Schrecklich, ich bin total enttäuscht.", "negative"),
    ("fr", "Délicieux, je recommande vivement !", "positive"),
    ("fr", "Vraiment horrible, je suis très déçu.", "negative"),
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory, real_pipeline):
    if real_pipeline.languages:
        pytest.skip(f"the default pipeline's encoder covers only {real_pipeline.languages}")
    d = tmp_path_factory.mktemp("ml")
    src = d / "mixed.csv"
    with open(src, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "lang", "text", "expected"])
        for i, (lang, text, label) in enumerate(CLEAR):
            w.writerow([i, lang, text, label])
        w.writerow([90, "en", "Great taste but the box arrived crushed.", "mixed"])
        w.writerow([91, "zh", "味道很好，但是包装破损了。", "mixed"])
    score_file(src, d / "out.csv", scorer=real_pipeline, detector=LanguageDetector())
    with open(d / "out.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_clear_polarity_in_several_languages(scored):
    for row in scored:
        if row["expected"] != "mixed":
            assert row["language"] == row["lang"], row
            assert row["sentiment"] == row["expected"], row


@pytest.mark.parametrize("row_id", ["90", "91"])
def test_mixed_aspects_in_english_and_chinese(scored, row_id):
    row = next(r for r in scored if r["id"] == row_id)
    aspects = {a["aspect"]: a for a in json.loads(row["aspects"])}
    assert aspects["taste"]["sentiment"] == "positive", aspects
    assert aspects["packaging"]["sentiment"] == "negative", aspects
