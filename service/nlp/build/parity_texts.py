"""A fixed, varied set of texts for checking a built encoder against the package's engine.

Deterministic for a seed: English and Chinese feedback written by the demo generator and frozen
in ``parity_inputs.json`` (so a change to the demo never changes the sample), short
reviews in twelve other languages (written for this project), emoji-heavy posts, odd
whitespace, URLs and numbers, mixed scripts, and very long texts that need several
512-token windows.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path

INPUTS = Path(__file__).with_name("parity_inputs.json")


@cache
def _inputs() -> dict[str, list[str]]:
    return json.loads(INPUTS.read_text(encoding="utf-8"))


OTHER_LANGUAGES = {
    "es": [
        "La sopa estaba demasiado picante.",
        "El envío llegó muy tarde y la caja estaba rota.",
        "Muy rico, lo volveré a comprar.",
        "El precio subió otra vez, no vale la pena.",
        "El servicio al cliente nunca respondió.",
        "Fácil de preparar en tres minutos.",
    ],
    "fr": [
        "Le goût est excellent mais l'emballage était abîmé.",
        "Beaucoup trop épicé pour moi.",
        "La livraison a pris deux semaines.",
        "Bon rapport qualité-prix.",
        "Le service client a été très aimable.",
        "Introuvable dans mon supermarché.",
    ],
    "de": [
        "Viel zu scharf, ich konnte es nicht essen.",
        "Die Lieferung kam drei Tage zu spät.",
        "Schmeckt super und ist schnell zubereitet.",
        "Die Verpackung war beschädigt.",
        "Zu teuer für so eine kleine Portion.",
        "Der Kundenservice war unfreundlich.",
    ],
    "pt": [
        "O sabor é ótimo, mas a entrega atrasou.",
        "Picante demais para mim.",
        "A embalagem chegou amassada.",
        "Vale muito a pena pelo preço.",
        "Atendimento excelente, resolveram rápido.",
        "Difícil de encontrar nas lojas.",
    ],
    "it": [
        "Troppo piccante, non sono riuscito a finirlo.",
        "La confezione era rotta all'arrivo.",
        "Buonissimo, lo ricomprerò.",
        "Spedizione lentissima.",
        "Prezzo troppo alto.",
        "Il servizio clienti è stato gentile.",
    ],
    "ja": [
        "辛すぎて食べられませんでした。",
        "配送がとても遅かったです。",
        "とても美味しいです！",
        "箱がつぶれて届きました。",
        "値段のわりに量が少ない。",
        "カスタマーサービスの対応が良かった。",
    ],
    "ko": [
        "너무 매워서 다 못 먹었어요.",
        "배송이 일주일이나 걸렸어요.",
        "정말 맛있어요!",
        "포장이 찢어져서 왔어요.",
        "가격 대비 양이 적어요.",
        "고객센터 응대가 친절했어요.",
    ],
    "ru": [
        "Слишком острое, не смог доесть.",
        "Доставка задержалась на неделю.",
        "Очень вкусно!",
        "Упаковка пришла помятой.",
        "Слишком дорого для такой порции.",
        "Служба поддержки быстро помогла.",
    ],
    "ar": [
        "حار جدا، لم أستطع إكماله.",
        "تأخر التوصيل أسبوعا كاملا.",
        "لذيذ جدا!",
        "وصلت العلبة مكسورة.",
        "السعر مرتفع مقارنة بالكمية.",
        "خدمة العملاء كانت ممتازة.",
    ],
    "hi": [
        "बहुत ज़्यादा तीखा है।",
        "डिलीवरी एक हफ्ते देर से आई।",
        "स्वाद बहुत अच्छा है!",
        "पैकेट फटा हुआ आया।",
        "दाम के हिसाब से मात्रा कम है।",
        "ग्राहक सेवा ने जल्दी मदद की।",
    ],
    "tr": [
        "Çok acı, bitiremedim.",
        "Kargo bir hafta gecikti.",
        "Çok lezzetli!",
        "Kutu ezik geldi.",
        "Fiyatına göre az.",
        "Müşteri hizmetleri çok ilgiliydi.",
    ],
    "vi": [
        "Cay quá, tôi không ăn hết được.",
        "Giao hàng chậm cả tuần.",
        "Rất ngon!",
        "Hộp bị móp khi nhận.",
        "Giá hơi cao so với số lượng.",
        "Chăm sóc khách hàng rất nhiệt tình.",
    ],
}


def parity_texts(n_long: int = 12, seed: int = 17) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs: 576 by default. ``seed`` drives the random choices (emoji,
    punctuation, long texts); the frozen feedback is the same for every seed."""
    rng = random.Random(seed)
    fixed = _inputs()
    out: list[tuple[str, str]] = []
    out += [("en", t) for t in fixed["feedback_en"]]
    out += [("zh", t) for t in fixed["feedback_zh"]]
    emoji = fixed["emoji"]
    for lang, phrases in OTHER_LANGUAGES.items():
        for p in phrases:
            out.append((lang, p))
            out.append((lang, f"{p} {rng.choice(emoji)}{rng.choice(emoji)}"))
            out.append((lang, p.lower() + rng.choice(("!!", "…", " ??", ""))))
    for _ in range(30):
        out.append(("emoji", "".join(rng.choice(emoji) for _ in range(rng.randint(1, 12)))))
    odd = [
        "  leading and trailing  ",
        "tabs\tand\nnew\nlines",
        "ＦＵＬＬＷＩＤＴＨ　ｌｅｔｔｅｒｓ～１２３",
        "https://example.com/p/123?q=noodles&x=1",
        "order #48213 arrived 2026-05-04 at 09:30",
        "ﬁ ligature café naïve coöperate",
        "ALL CAPS REVIEW!!!",
        "...",
        "?",
        "a",
        "mixed 中文 and English 混合 text",
        "Ça coûte 3,50 €",
        "①②③ ⑴⑵ ㈱",
        "x" * 300,
        "😀" * 50,
        "味" * 200,
        "\u200bzero\u200bwidth\u200b",
        "line1\r\nline2",
    ]
    out += [("edge", t) for t in odd]
    phrases_en = fixed["phrases_en"]
    phrases_zh = fixed["phrases_zh"]
    for i in range(n_long):
        bank = phrases_zh if i % 3 == 1 else phrases_en
        k = rng.randint(120, 420) if bank is phrases_en else rng.randint(150, 500)
        sep = "。" if bank is phrases_zh else ". "
        out.append(("long", sep.join(rng.choice(bank) for _ in range(k))))
    return out
