"""Language identification accuracy on short English, Chinese and mixed texts.

    python benchmarks/language_id.py

Sets:
- umsab val tweets (8 languages, real short social posts) and ChnSentiCorp dev (Chinese
  reviews), read from ../shared/data when present;
- generated short texts: single demo-generator fragments in English and Chinese (2-40
  characters), and mixed texts built here: Chinese with English product words, English
  with emoji and @mentions, Chinese with emoji.

Reports accuracy, the share answered "und" (unknown) and the time per text. Prints JSON.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter

from service.demo.phrases import EMOJI, TOPICS
from service.ingest.language import LanguageDetector


def generated_sets(seed: int = 5) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(seed)
    en = [p for t in TOPICS.values() for p in t.en]
    zh = [p for t in TOPICS.values() for p in t.zh]
    words = [
        "app",
        "App Store",
        "iPhone",
        "NoodleKing",
        "OK",
        "bug",
        "wifi",
        "logo",
        "size L",
        "VIP",
    ]
    emoji = [e for v in EMOJI.values() for e in v if e]
    mixed = []
    for _ in range(300):
        kind = rng.random()
        if kind < 0.4:
            z = rng.choice(zh)
            cut = rng.randrange(1, max(len(z), 2))
            mixed.append((z[:cut] + f" {rng.choice(words)} " + z[cut:], "zh"))
        elif kind < 0.7:
            mixed.append((f"@{rng.choice(words)} {rng.choice(en)} {rng.choice(emoji)}", "en"))
        else:
            mixed.append((f"{rng.choice(zh)}{rng.choice(emoji)}{rng.choice(emoji)}", "zh"))
    return {
        "generated_en_fragments": [(p, "en") for p in en],
        "generated_zh_fragments": [(p, "zh") for p in zh],
        "generated_mixed": mixed,
    }


def shared_sets() -> dict[str, list[tuple[str, str]]]:
    try:
        from training import data as D
    except ImportError:
        return {}
    out = {}
    root = D.data_dir()
    if (root / "umsab").exists():
        for folder, code in D.UMSAB_LANGS.items():
            texts = D.umsab(folder, "val").texts
            out[f"umsab_{code}_val"] = [(t, code) for t in texts]
    if (root / "chnsenticorp").exists():
        import csv

        with open(root / "chnsenticorp" / "dev.tsv", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))[1:]
        out["chnsenticorp_dev"] = [(r[2], "zh") for r in rows]
    return out


def main() -> None:
    det = LanguageDetector()
    det.detect("warm up the models")
    results = {}
    for name, items in {**generated_sets(), **shared_sets()}.items():
        t0 = time.perf_counter()
        got = [det.detect(t) for t, _ in items]
        dt = time.perf_counter() - t0
        correct = sum(g == want for g, (_, want) in zip(got, items))
        wrong = Counter(g for g, (_, want) in zip(got, items) if g != want)
        results[name] = {
            "n": len(items),
            "accuracy": round(correct / len(items), 4),
            "und_share": round(got.count("und") / len(items), 4),
            "mean_chars": round(sum(len(t) for t, _ in items) / len(items), 1),
            "ms_per_text": round(1000 * dt / len(items), 3),
            "top_confusions": dict(wrong.most_common(3)),
        }
    print(
        json.dumps(
            {
                "detector": "lingua (restricted to 18 languages) + Han-script rule",
                "languages": list(det.languages),
                "sets": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
