"""Personal-data redaction applied to text before it is stored or scored.

Modes: ``redact`` replaces a match by a typed placeholder (``[EMAIL]``), ``mask`` keeps the
first and last characters (``j***@x.com``-style), ``keep`` leaves the text alone.

Kinds: ``EMAIL``, ``PHONE``, ``ID`` (Chinese resident ID with its check digit), ``CARD`` (Luhn),
``ADDRESS``. Addresses are found conservatively, because a false positive destroys feedback
text: an English street address needs a house number, a capitalised street name and a street
type; a Chinese one needs a road with a house number (``建国路88号``) or a flat's building /
unit / room numbers (``5栋1单元402室``). Mentions of a road, a district or a number alone are
left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class PiiMode(StrEnum):
    redact = "redact"
    mask = "mask"
    keep = "keep"


# (starting only where a run of address characters starts: the same matches, in linear time)
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Mainland-China resident ID: 17 digits + check digit (0-9 or X).
_CN_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Mainland-China mobile numbers (optionally +86) and general international numbers.
_CN_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
# Other numbers only in a phone-like shape: +country code, (area) code, or 3-3-4 groups;
# bare digit runs (order numbers, batch codes) are left alone.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .\-]?(?:\(?\d{1,4}\)?[ .\-]?)?\d{2,4}(?:[ .\-]?\d{2,4}){1,3}"
    r"|\(\d{2,4}\)[ .\-]?\d{3,4}[ .\-]?\d{4}"
    r"|\d{3}[.\-]\d{3}[.\-]\d{4})(?!\d)"
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _valid_cn_id(s: str) -> bool:
    total = sum(int(d) * w for d, w in zip(s[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == s[17].upper()


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --- English street addresses ------------------------------------------------------------
# house number + capitalised street name (1-3 words, or an ordinal: "W 34th") + street type,
# then optionally a direction, a unit ("Apt 4B") and a city with a US state / ZIP or a UK
# postcode. Types that double as ordinary words (Way, Place, Court, Drive…) count only with
# such a tail or after an address cue ("I live at", "ship to", "address:").
_EN_STRONG = (
    "street",
    "st",
    "road",
    "rd",
    "avenue",
    "ave",
    "boulevard",
    "blvd",
    "lane",
    "ln",
    "highway",
    "hwy",
    "parkway",
    "pkwy",
)
_EN_WEAK = ("way", "place", "pl", "court", "ct", "drive", "dr", "terrace", "crescent")
_US_STATES = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC"
).split()
_SP = r"[ \t]+"
_EN_WORD = r"(?:[A-Z][A-Za-z'’\-]*|\d{1,3}(?:st|nd|rd|th))"
_EN_CITY = r"[A-Z][a-z]+(?:[ \-][A-Z][a-z]+){0,2}"
_EN_ZIP = r"\d{5}(?:-\d{4})?"
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}"
_EN_UNIT = (
    r"(?:Apt|Apartment|Unit|Suite|Ste|Flat|Floor|Fl|Room|Rm)\.?[ \t]*#?[ \t]*"
    r"[A-Za-z]?\d{1,5}[A-Za-z]?"
)
_EN_STATE = "(?:" + "|".join(_US_STATES) + ")"
_EN_ADDRESS = re.compile(
    r"(?<![\w.,$€£¥%/:#\-])"
    rf"(?P<prefix>{_EN_UNIT},?{_SP})?"
    r"(?P<number>\d{1,5}[A-Za-z]?(?:[ \t]?[-–][ \t]?\d{1,5}[A-Za-z]?)?)"
    + _SP
    + rf"(?P<name>(?:(?:[NSEW]|North|South|East|West)\.?{_SP})?"
    rf"(?:{_EN_WORD}{_SP}){{0,2}}{_EN_WORD})"
    + _SP
    + r"(?P<type>(?i:"
    + "|".join(_EN_STRONG + _EN_WEAK)
    + r"))\b\.?"
    r"(?:[ \t]+(?:NE|NW|SE|SW|N|S|E|W|North|South|East|West)\b\.?)?"
    rf"(?P<unit>,?{_SP}(?:{_EN_UNIT}|#[ \t]?\d{{1,5}}[A-Za-z]?)\b)?"
    r"(?P<tail>"
    rf",?\s+{_EN_CITY},?[ \t]+{_EN_STATE}(?:[ \t]+{_EN_ZIP})?\b"
    rf"|,?\s+(?:{_EN_CITY},?[ \t]+)?{_UK_POSTCODE}\b"
    rf"|,?\s+{_EN_CITY},?[ \t]+{_EN_ZIP}\b"
    r")?"
)
# Words that are not part of a street name, and words before a number that make it a count,
# a rank or a level rather than a house number ("Top 5 Food Street stalls", "Level 2 Food Court").
_EN_NOT_NAME = {
    "on",
    "in",
    "at",
    "of",
    "and",
    "or",
    "for",
    "to",
    "with",
    "from",
    "by",
    "my",
    "our",
    "your",
    "is",
    "are",
    "was",
    "were",
    "i",
    "it",
    "we",
    "you",
    "they",
    "the",
    "a",
    "an",
}
_EN_NOT_BEFORE = {
    "the",
    "top",
    "best",
    "level",
    "floor",
    "gate",
    "platform",
    "terminal",
    "route",
    "day",
    "week",
    "chapter",
    "episode",
    "season",
    "part",
    "page",
    "version",
    "model",
    "rated",
    "rating",
    "ate",
    "ordered",
    "bought",
    "got",
    "had",
    "only",
    "about",
    "over",
    "under",
    "than",
    "x",
}
_EN_CUE = re.compile(
    r"(?:\b(?:live[sd]?|living|stay(?:s|ed|ing)?|reside[sd]?|residing|located|based|moved?)"
    r"[ \t]+(?:at|on|to|in)"
    r"|\baddress(?:[ \t]+is)?"
    r"|\b(?:deliver(?:ed|y)?|ship(?:ped|ping)?|send|sent|mail(?:ed)?|post(?:ed)?|return(?:ed)?)"
    r"\b[^.!?\n]{0,20}?\bto)"
    r"[ \t]*[:：]?[ \t]*$",
    re.IGNORECASE,
)


def _en_address(m: re.Match) -> tuple[int, int] | None:
    words = [w.lower().rstrip(".") for w in m.group("name").split()]
    if any(w in _EN_NOT_NAME for w in words):
        return None
    kind = m.group("type")
    if len(words) == 1 and re.fullmatch(r"\d+(?:st|nd|rd|th)", words[0]) and not kind.istitle():
        return None  # "3 1st rd picks": a first round, not 1st Rd
    before = m.string[max(0, m.start() - 60) : m.start()]
    if not m.group("prefix"):
        prev = re.search(r"(\w+)[ \t]*$", before)
        if prev and (prev.group(1).lower() in _EN_NOT_BEFORE or prev.group(1).isdigit()):
            return None  # "Top 5 …", "1 2 3 4 Total Golden St…": a rank or a count
    if kind.lower() in _EN_WEAK and not (
        m.group("prefix") or m.group("unit") or m.group("tail") or _EN_CUE.search(before)
    ):
        return None
    return m.span()


# --- Chinese addresses -------------------------------------------------------------------
# [admin levels] + (road + house number [+ estate] [+ building/unit/room]
#                  | [estate +] building/unit/room numbers), e.g. 上海市浦东新区张江路123号5栋1单元402室.
# A place name never holds these (pronouns, particles, "在/到/寄/送"…), so a match cannot run
# back over "我家在…" or "我们小区…".
_ZH_NAME = r"(?:(?![我你他她它们这的了在住是给吗呢吧啊很被把让到寄送从去址])[\u4e00-\u9fff])"
_S = r"[ \t]?"
# (小区 is an estate, not a district)
_ZH_ADMIN_SFX = r"(?:自治区|自治州|特别行政区|省|市|(?<!小)区|县|旗|镇|乡|街道)"
_ZH_STREET_SFX = r"(?:大街|大道|路|街|巷|胡同)"
_ZH_ESTATE_SFX = r"(?:小区|花园|公寓|大厦|新村|家园|社区|公馆|苑)"
# Atomic groups: each place name is the shortest one before its suffix, and is not tried
# again at other lengths (without them a run like "区区区…" takes exponential time).
_ZH_ADMIN = rf"(?>{_ZH_NAME}{{2,6}}?{_ZH_ADMIN_SFX})"
_ZH_STREET = rf"(?>{_ZH_NAME}{{1,5}}?{_ZH_STREET_SFX})"
_ZH_ESTATE = rf"(?>{_ZH_NAME}{{2,8}}?{_ZH_ESTATE_SFX})"
# road number: 88号, 12-14号, 123弄4号, 123弄; not 5号线 (metro line) or 号码
_ZH_NUMBER = rf"\d+(?:{_S}[-－]{_S}\d+)?{_S}(?:弄{_S}\d+{_S}号(?![线码])|号(?![线码])|弄)院?"
_ZH_BUILDING = r"(?:[A-Za-z]|\d+)" + _S + r"(?:号楼|栋|幢|座)"
_ZH_UNIT = r"\d+" + _S + r"单元"
_ZH_ROOM = r"\d+" + _S + r"(?:室|户|号房)"
_ZH_FLOOR = r"\d+" + _S + r"(?:楼|层)"
_ZH_BARE_ROOM = r"\d{3,4}(?![\w\-])"  # "1单元402": a room number after a unit or building
_ZH_PART = f"(?:{_ZH_BUILDING}|{_ZH_UNIT}|{_ZH_ROOM}|{_ZH_FLOOR})"
_ZH_MORE = rf"(?:{_S}(?:{_ZH_PART}|{_ZH_BARE_ROOM})){{0,4}}"  # bounded: no quadratic backtracking
# A flat without a road number must say more than "3楼" or "2室": two or more parts, one of
# them a unit or room ("5栋1单元402室", "3号楼502室"), or an estate and its building ("阳光小区5号楼").
_ZH_FLAT = (
    rf"(?:{_ZH_ESTATE}{_S}(?:{_ZH_BUILDING}|{_ZH_UNIT}|{_ZH_ROOM}){_ZH_MORE}"
    rf"|(?:{_ZH_UNIT}|{_ZH_ROOM}){_S}(?:{_ZH_PART}|{_ZH_BARE_ROOM}){_ZH_MORE}"
    rf"|{_ZH_PART}(?:{_S}{_ZH_PART}){{0,3}}{_S}(?:{_ZH_UNIT}|{_ZH_ROOM}|{_ZH_BARE_ROOM})"
    rf"{_ZH_MORE})"
)
_ZH_ROAD = (
    rf"{_ZH_STREET}(?:{_S}[一二三四五六七八九十\d]{{1,3}}段)?{_S}{_ZH_NUMBER}"  # 人民南路四段1号
    rf"(?:{_S}(?:{_ZH_ESTATE}{_S})?{_ZH_PART}{_ZH_MORE})?"
)
_ZH_ADDRESS = re.compile(rf"(?:{_ZH_ADMIN}{_S}){{0,5}}(?:{_ZH_ROAD}|{_ZH_FLAT})")
# the first place name of a match, to trim (see _zh_start)
_ZH_FIRST = re.compile(
    rf"(?P<name>{_ZH_NAME}{{2,6}}?){_ZH_ADMIN_SFX}"
    rf"|(?P<name2>{_ZH_NAME}{{1,5}}?){_ZH_STREET_SFX}"
    rf"|(?P<name3>{_ZH_NAME}{{2,8}}?){_ZH_ESTATE_SFX}"
)
_ZH_PROVINCES = (
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "黑龙江",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "内蒙古",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
)
# Characters that rarely belong to a place name but can ("位于", "楼下", "2024年", but 下沙路,
# 海口市, 个旧市): the first place name of a match starts after the last of them, keeping at
# least 2 characters.
_ZH_LEAD = set("于往下边旁近面口靠和与及或年月日那个家")


def _zh_start(m: re.Match) -> int:
    """Where the address really begins: the regex lets the first place name run back over
    the words before it ("我家在上海市…"), so trim it to a province or to after a cue word."""
    first = _ZH_FIRST.match(m.string, m.start())
    if not first:
        return m.start()
    key = next(k for k in ("name", "name2", "name3") if first.group(k) is not None)
    name = first.group(key)
    for prov in _ZH_PROVINCES:
        i = name.find(prov)
        if i > 0:
            return m.start() + i
    for j in range(len(name) - 1, -1, -1):
        if name[j] in _ZH_LEAD and len(name) - j - 1 >= 2:
            return m.start() + j + 1
    return m.start()


def _zh_address(m: re.Match) -> tuple[int, int] | None:
    return _zh_start(m), m.end()


# --- rules -------------------------------------------------------------------------------


def _whole_if(check: Callable[[str], bool]) -> Callable[[re.Match], tuple[int, int] | None]:
    return lambda m: m.span() if check(m.group(0)) else None


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern
    # The span (in the whole text) to handle, or None to leave the match alone.
    span: Callable[[re.Match], tuple[int, int] | None] = re.Match.span
    # A cheap test that a text can hold a match at all: without it the rule is skipped.
    needs: re.Pattern | None = None


_RULES = (
    _Rule("EMAIL", _EMAIL),
    _Rule("ID", _CN_ID, _whole_if(_valid_cn_id)),
    _Rule("PHONE", _CN_MOBILE),
    _Rule("CARD", _CARD, _whole_if(lambda s: _luhn(re.sub(r"\D", "", s)))),
    _Rule("PHONE", _PHONE, _whole_if(lambda s: len(re.sub(r"\D", "", s)) >= 8)),
    _Rule("ADDRESS", _EN_ADDRESS, _en_address, re.compile(r"\d[A-Za-z]?[ \t]+[A-Z0-9]")),
    _Rule(
        "ADDRESS", _ZH_ADDRESS, _zh_address, re.compile(r"[A-Za-z\d][ \t]?[号栋幢座单室户楼层弄]")
    ),
)


def _mask(s: str) -> str:
    if len(s) <= 4:
        return "*" * len(s)
    return s[:2] + "*" * (len(s) - 4) + s[-2:]


def redact(text: str, mode: PiiMode = PiiMode.redact) -> tuple[str, dict[str, int]]:
    """Return the text with personal data handled by ``mode`` and counts per kind found."""
    found: dict[str, int] = {}
    if mode is PiiMode.keep:
        return text, found
    for rule in _RULES:
        if rule.needs is not None and not rule.needs.search(text):
            continue

        def _sub(m: re.Match, rule=rule) -> str:
            span = rule.span(m)
            if span is None:
                return m.group(0)
            start, end = span
            found[rule.kind] = found.get(rule.kind, 0) + 1
            s = m.string[start:end]
            handled = f"[{rule.kind}]" if mode is PiiMode.redact else _mask(s)
            return m.string[m.start() : start] + handled + m.string[end : m.end()]

        text = rule.pattern.sub(_sub, text)
    return text, found
