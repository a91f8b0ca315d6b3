"""Phrase banks of the demo generator, written for this project.

Each topic is one thing a customer says about one aspect with one polarity, in several
phrasings per language; the generator combines them with openers, connectors, closers,
emoji and typos so that no two items read alike.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    aspect: str | None
    polarity: int  # -1, 0, +1
    en: tuple[str, ...]
    zh: tuple[str, ...]


TOPICS: dict[str, Topic] = {
    "taste_good": Topic(
        "taste",
        1,
        (
            "the taste is amazing",
            "really tasty, the broth is rich",
            "flavour is spot on",
            "so delicious, my whole family loved it",
            "tastes like the ones from a proper noodle shop",
            "the seasoning is perfectly balanced",
            "yummy and filling",
            "the soup base is so fragrant",
        ),
        (
            "味道很好",
            "汤底很浓郁，好吃",
            "口味正宗",
            "太好吃了，全家都喜欢",
            "调料味道刚刚好",
            "吃起来很香",
            "面条很劲道，味道不错",
        ),
    ),
    "too_spicy": Topic(
        "taste",
        -1,
        (
            "way too spicy now",
            "it's so hot I couldn't finish it",
            "the new recipe is far too spicy",
            "burns my mouth, too much chili",
            "the spice level has gone crazy",
            "too spicy even for me and I like spicy food",
            "they made it way hotter than before",
            "my tongue was on fire, way too much chilli",
        ),
        (
            "太辣了",
            "现在辣得受不了",
            "新配方辣得吃不下去",
            "辣椒放太多了",
            "比以前辣太多了",
            "辣到嘴巴疼",
            "辣得我一直喝水",
        ),
    ),
    "bland": Topic(
        "taste",
        -1,
        (
            "tastes bland",
            "not much flavour at all",
            "kind of watery and tasteless",
            "the sauce has no taste",
        ),
        (
            "味道很淡",
            "没什么味道",
            "汤太寡淡了",
            "调料包味道一般",
        ),
    ),
    "packaging_damage": Topic(
        "packaging",
        -1,
        (
            "the box arrived crushed",
            "package was torn and the noodles were everywhere",
            "the cup was cracked and the soup leaked",
            "half the packs were damaged in the box",
            "the seal was broken when it arrived",
            "packaging split open in transit",
            "two of the bowls were smashed",
        ),
        (
            "包装破损了",
            "盒子压扁了",
            "杯子裂了，汤漏了一地",
            "收到时封口已经开了",
            "外包装都烂了",
            "好几包都压碎了",
        ),
    ),
    "packaging_nice": Topic(
        "packaging",
        1,
        (
            "the packaging is nice and sturdy",
            "well packed, nothing damaged",
            "love the new box design",
            "the resealable bag is really handy",
        ),
        (
            "包装很精美",
            "包装结实，没有破损",
            "新包装设计很好看",
            "密封做得很好",
        ),
    ),
    "delivery_slow": Topic(
        "delivery",
        -1,
        (
            "delivery took over a week",
            "the parcel arrived {n} days late",
            "the courier kept postponing",
            "shipping was painfully slow",
            "tracking didn't update for days",
        ),
        (
            "物流太慢了",
            "快递晚到了{n}天",
            "等了一个多星期才到",
            "物流信息好几天不更新",
        ),
    ),
    "delivery_fast": Topic(
        "delivery",
        1,
        (
            "delivery was super fast",
            "arrived the next day",
            "shipping was quick",
            "the courier was right on time",
        ),
        (
            "物流很快",
            "第二天就到了",
            "快递很给力",
            "发货速度快",
        ),
    ),
    "price_high": Topic(
        "price_value",
        -1,
        (
            "too expensive for what you get",
            "the price went up again",
            "overpriced compared to other brands",
            "not worth the money",
        ),
        (
            "太贵了",
            "又涨价了",
            "性价比不高",
            "价格偏高",
        ),
    ),
    "value_good": Topic(
        "price_value",
        1,
        (
            "great value for money",
            "cheap and cheerful",
            "good price, especially on sale",
            "worth every penny",
        ),
        (
            "性价比很高",
            "价格实惠",
            "活动价很划算",
            "这个价格很值",
        ),
    ),
    "service_bad": Topic(
        "customer_service",
        -1,
        (
            "customer service never replied to my email",
            "the hotline kept me on hold for 40 minutes",
            "support was rude and unhelpful",
            "still waiting for my refund",
        ),
        (
            "客服态度很差",
            "打客服电话一直没人接",
            "退款到现在还没处理",
            "客服一直不回复",
        ),
    ),
    "service_good": Topic(
        "customer_service",
        1,
        (
            "customer service sorted it out quickly",
            "the support team was really friendly",
            "got a refund within a day",
        ),
        (
            "客服很耐心",
            "客服处理得很快",
            "售后很好",
        ),
    ),
    "health_issue": Topic(
        "health_safety",
        -1,
        (
            "my son got a stomach ache after eating it",
            "found a piece of plastic in the noodles",
            "it was past the expiry date",
            "felt sick after dinner",
        ),
        (
            "吃完肚子疼",
            "面里有异物",
            "收到的已经过期了",
            "吃了以后拉肚子",
        ),
    ),
    "portion_small": Topic(
        "quantity_size",
        -1,
        (
            "the portion is tiny",
            "the pack feels half empty",
            "not enough noodles for one adult",
        ),
        (
            "分量太少了",
            "一包根本吃不饱",
            "感觉分量变少了",
        ),
    ),
    "out_of_stock": Topic(
        "availability",
        -1,
        (
            "always out of stock at my local store",
            "hard to find in shops",
            "sold out online again",
        ),
        (
            "经常缺货",
            "附近超市买不到",
            "网上又断货了",
        ),
    ),
    "easy_prep": Topic(
        "ease_of_use",
        1,
        (
            "super easy to prepare",
            "ready in three minutes",
            "the lid is easy to open",
        ),
        (
            "做起来很方便",
            "三分钟就能吃",
            "很方便，适合上班族",
        ),
    ),
    "neutral_note": Topic(
        None,
        0,
        (
            "just received my order",
            "bought it for the office",
            "trying a few brands to compare",
            "had it for lunch today",
        ),
        (
            "刚收到",
            "买来放办公室",
            "对比了几个牌子",
            "今天中午吃的",
        ),
    ),
}

OPENERS = {
    "en": (
        "",
        "",
        "",
        "Bought the {product} last week.",
        "Second time ordering from {brand_name}.",
        "Honest review:",
        "Ok so",
        "Tried the {product} for the first time.",
        "Picked this up at the supermarket.",
        "Ordered a box of {product}.",
    ),
    "zh": (
        "",
        "",
        "",
        "上周买的{product}。",
        "第二次回购了。",
        "说实话，",
        "第一次买{brand_name}的{product}，",
        "超市看到就买了，",
        "在网上买了一箱{product}，",
    ),
}
CLOSERS = {
    "en": {
        1: ("Will buy again.", "Recommended!", "5 stars from me.", "Love it."),
        0: ("Overall ok.", "We'll see.", "Not bad, not great."),
        -1: ("Not sure I'll reorder.", "Never again.", "Really disappointed.", "Please fix this."),
    },
    "zh": {
        1: ("会回购的。", "推荐！", "好评。", "很满意。"),
        0: ("总体还行。", "一般般吧。", "再观察一下。"),
        -1: ("不会再买了。", "很失望。", "希望改进。", "差评。"),
    },
}
CONTRAST = {
    "en": (" but ", ", however ", ". On the other hand, ", ", though "),
    "zh": ("，但是", "，不过", "，可是", "，就是"),
}
AGREE = {"en": (" and ", ", ", ". Also ", ". "), "zh": ("，而且", "，", "，还有", "。")}
EMOJI = {1: ("😍", "👍", "🔥", "😋", "❤️"), 0: ("🤔", "😐", ""), -1: ("😡", "👎", "😤", "🤢", "😞")}
STORIES = {
    "en": (
        "We had it for dinner with friends on the weekend and everyone had an opinion.",
        "I usually buy a different brand but my local shop had a promotion on this one.",
        "I've been eating instant noodles for years so I know what good ones taste like.",
    ),
    "zh": (
        "周末和朋友一起吃的，大家意见都不一样。",
        "平时买别的牌子，这次超市搞活动就试了一下。",
        "吃方便面很多年了，好不好吃一尝就知道。",
    ),
}
CONTACT = {
    "en": ("Call me on {phone}.", "Email me at {email} please."),
    "zh": ("我的电话{phone}。", "请联系我{phone}。"),
}
