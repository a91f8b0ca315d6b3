"""Taxonomy rules: include, exclude, negation, proximity, English and Chinese; and the
shipped severe-harm detector on hand-written positives and near misses in both languages."""

import pytest

from service.config import DEFAULT_CONFIG_DIR
from service.domain import AspectRules, Taxonomy
from service.nlp.rules import CompiledRules, RuleError, compile_taxonomy_rules


def rules(include, exclude=None, negation=False, window=3) -> CompiledRules:
    return CompiledRules(
        "x",
        AspectRules(include=include, exclude=exclude or {}, negation=negation, window=window),
        negation=False,
    )


def patterns(r: CompiledRules, text: str, lang: str = "en") -> list[str]:
    return [m.pattern for m in r.match(text, lang)]


def test_latin_words_match_whole_words_case_insensitive_with_prefix_wildcards():
    r = rules({"en": ["staff", "wait*", "wine list", "$"]})
    assert patterns(r, "The STAFF were lovely") == ["staff"]
    assert patterns(r, "a staffing agency") == []
    assert patterns(r, "we waited an hour") == ["wait*"]
    assert patterns(r, "their wine-list is long") == ["wine list"]
    assert patterns(r, "only $5") == ["$"]


def test_exclude_vetoes_the_include_matches_it_overlaps_only():
    r = rules({"en": ["wait*"]}, {"en": ["wait staff"]})
    assert patterns(r, "the wait staff was rude") == []
    assert patterns(r, "the wait staff was rude and we waited an hour") == ["wait*"]


def test_negation_window_in_english_and_chinese():
    r = rules({"en": ["hair"], "zh": ["拉肚子"]}, negation=True, window=3)
    assert patterns(r, "there was hair in it") == ["hair"]
    assert patterns(r, "no hair in it, all clean") == []
    assert patterns(r, "I didn't find any hair") == []
    # the negation belongs to another clause: the match counts
    assert patterns(r, "not great, hair in the soup") == ["hair"]
    assert patterns(r, "吃了以后拉肚子", "zh") == ["拉肚子"]
    assert patterns(r, "吃了也没有拉肚子", "zh") == []
    # 不过 ("however") is not a negation
    assert patterns(r, "很方便，不过吃了以后拉肚子", "zh") == ["拉肚子"]


def test_a_chinese_clause_that_ends_denying_its_match_is_negated():
    r = rules({"zh": ["虫子", "坏果", "拉肚子"]}, negation=True)
    assert patterns(r, "房间里虫子倒是没有，就是有点吵", "zh") == []
    assert patterns(r, "包装很好，坏果一个都没有。", "zh") == []
    assert patterns(r, "虫子没有", "zh") == []
    # the clause goes on after the negation: "the diarrhoea did not stop" is a harm
    assert patterns(r, "吃完拉肚子没有停过", "zh") == ["拉肚子"]
    # the negation is in the next clause, about something else
    assert patterns(r, "房间有虫子，服务员没有来", "zh") == ["虫子"]
    # only with negation on (topics keep their matches)
    assert patterns(rules({"zh": ["虫子"]}), "虫子倒是没有", "zh") == ["虫子"]


def test_negation_is_off_for_topics_unless_asked():
    r = rules({"en": ["tasty"]})
    assert patterns(r, "not tasty at all") == ["tasty"]  # still about taste


def test_proximity_any_order_and_alternatives():
    r = rules({"en": ["found ~3 hair | glass"], "zh": ["吃出 ~4 头发 | 虫"]})
    assert patterns(r, "found a piece of glass") == ["found ~3 hair | glass"]
    assert patterns(r, "glass, found it in my salad") == ["found ~3 hair | glass"]
    assert patterns(r, "found the place easily, nice glass windows everywhere here") == []
    assert patterns(r, "今天吃出一根头发", "zh") == ["吃出 ~4 头发 | 虫"]
    assert patterns(r, "吃出了很多年前的味道，头发都白了", "zh") == []


def test_chinese_characters_and_whole_words_by_jieba():
    r = rules({"zh": ["=香"]})
    assert patterns(r, "面条香，好吃", "zh") == ["=香"]
    assert patterns(r, "从香港寄来的", "zh") == []
    plain = rules({"zh": ["香"]})
    assert patterns(plain, "从香港寄来的", "zh") == ["香"]


def test_patterns_apply_by_language_and_any():
    r = rules({"en": ["box"], "any": ["#recall"]})
    assert patterns(r, "the box", "en") == ["box"]
    assert patterns(r, "the box", "nl") == []  # no Dutch rules: left to the model
    assert patterns(r, "#recall now", "nl") == ["#recall"]


def test_a_bad_pattern_is_named_with_its_aspect_and_language():
    tax = Taxonomy.model_validate(
        {
            "aspects": [
                {
                    "id": "taste",
                    "names": {"en": "Taste"},
                    "description": "d",
                    "rules": {"include": {"en": ["good", " ~2 "]}},
                }
            ]
        }
    )
    with pytest.raises(RuleError, match=r"aspect 'taste': rules.include.en: pattern ' ~2 '"):
        compile_taxonomy_rules(tax)


@pytest.fixture(scope="module")
def default_taxonomy():
    """The shipped taxonomy and its compiled rules, read once for the module."""
    tax = Taxonomy.from_yaml(DEFAULT_CONFIG_DIR / "taxonomy.yaml")
    return tax, compile_taxonomy_rules(tax)


@pytest.fixture(scope="module")
def harm(default_taxonomy):
    tax, compiled = default_taxonomy
    severe = [a.id for a in tax.aspects if a.kind == "severity"]
    assert severe == ["health_safety"]
    return lambda text, lang: any(compiled[a].match(text, lang) for a in severe)


# what the severe (health_safety) rules must catch, by language
HARM = {
    "en": [
        "Found a piece of plastic in my noodles",
        "my son got sick after eating this, vomiting all night",
        "I had an allergic reaction, my lips were swollen",
        "The cup cracked and I burned my hand",
        "the milk was spoiled and smelled sour",
        "there was a cockroach in the soup",
        "it was past its expiry date and moldy",
        "the charger caught fire",
        "there was a long hair on my plate",
        "the cable sparked and shocked my wife",
        "it gets hot enough to burn my legs",
    ],
    "zh": [
        "面里吃出一根头发",
        "吃了以后拉肚子",
        "孩子吃完过敏起疹子",
        "汤太烫，烫伤了手",
        "牛奶变质了，一股酸味",
        "面里有虫子",
        "打开发现已经发霉了",
        "充电器冒烟了",
        "不过吃完肚子疼",
        "孩子不慎摔倒，磕破了头",
        "充电器烧坏了，插头都烧黑了",
        "收到一箱苹果，烂了三个",
        "用了以后头皮长痘，还红肿",
    ],
}
# and the near misses they must let pass: the same words, no harm
NEAR_MISSES = {
    "en": [
        "Kind of watery and tasteless",
        "Burns my mouth, too much chili",
        "Overpriced compared to other brands",
        "Shipping was painfully slow",
        "The box arrived crushed and the cup cracked",
        "I'm sick of waiting for my order",
        "no hair, no bugs, really clean kitchen",
        "didn't get sick, but it was bland",
        "too much sugar, not healthy",
        "the portion is tiny",
        "I am allergic to nuts and the waiter knew the menu well",
        "hospital-type food at a steakhouse price",
    ],
    "zh": [
        "太咸了，吃不下去",
        "一包根本吃不饱",
        "杯子裂了，汤漏了一地",
        "太辣了",
        "价格太贵了",
        "快递太慢了",
        "没有异物，很干净",
        "吃了也没拉肚子，就是不好吃",
        "毛巾上有头发，卫生一般",
        "手机坏了",
        "浴室地滑，好几次差点摔倒",
        "万一过敏了怎么办",
        "新闻说消费者喝出活虫",
        "房间蚊子多，被咬了一脸包",
        "屏幕里有异物，不是坏点",
        "祛痘效果一般",
        "外包装都烂了，但是这个价格很值",
        "外包装都烂了，而且等了一个多星期才到",
    ],
}


def _by_language(texts: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(lang, text) for lang, some in texts.items() for text in some]


@pytest.mark.parametrize("lang,text", _by_language(HARM))
def test_harm_detector_positives(harm, lang, text):
    assert harm(text, lang)


@pytest.mark.parametrize("lang,text", _by_language(NEAR_MISSES))
def test_harm_detector_near_misses(harm, lang, text):
    assert not harm(text, lang)


@pytest.fixture(scope="module")
def default_rules(default_taxonomy):
    return default_taxonomy[1]


# the default taxonomy's topic rules: in-person service is customer service, how food was cooked
# is its taste; and the collisions each must not take (hand-written, not from any data set)
TOPIC_RULES = [
    ("en", "Our waiter was rude and never came back", "customer_service", True),
    ("en", "We waited forty minutes and the staff ignored us", "customer_service", True),
    ("en", "the service was painfully slow", "customer_service", True),
    ("zh", "服务员态度很差，上菜也慢", "customer_service", True),
    ("en", "they added a 15% service charge", "customer_service", False),
    ("en", "the server kept crashing all night", "customer_service", False),
    ("zh", "高速服务区里买的", "customer_service", False),
    ("en", "The fish was overcooked and the bread stale", "taste", True),
    ("en", "the food was mediocre at best", "taste", True),
    ("zh", "菜太油腻了，鱼还有点腥", "taste", True),
    ("en", "the food arrived in a box", "taste", False),
    ("zh", "洗完头发还是很油腻", "taste", False),
]


@pytest.mark.parametrize("lang,text,aspect,tagged", TOPIC_RULES)
def test_default_topic_rules(default_rules, lang, text, aspect, tagged):
    assert bool(default_rules[aspect].match(text, lang)) is tagged
