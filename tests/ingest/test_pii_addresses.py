"""Street addresses in feedback text: redacted (or masked) where clearly an address, and
ordinary sentences left exactly as written, since a false positive destroys feedback."""

from datetime import UTC, datetime

import pytest

from service.ingest.pii import PiiMode, redact
from service.store import repo

# (text, what redact mode stores)
ADDRESSES_EN = [
    ("I live at 221B Baker Street, London NW1 6XE", "I live at [ADDRESS]"),
    ("ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500 asap", "ship to [ADDRESS] asap"),
    ("my address is 742 Evergreen Terrace, Springfield", "my address is [ADDRESS], Springfield"),
    ("deliver to 12 Oak Ln Apt 4B please", "deliver to [ADDRESS] please"),
    ("Apartment 5B, 1200 Lake Shore Drive, Chicago, IL 60610", "[ADDRESS]"),
    ("the office at 45 W 34th St, New York, NY 10001.", "the office at [ADDRESS]."),
    ("Flat 3, 12 High Street, Oxford OX1 4AA", "[ADDRESS]"),
    ("Courier left it at 10 Downing St instead", "Courier left it at [ADDRESS] instead"),
    ("Send it to 350 Fifth Avenue, Suite 3300 thanks", "Send it to [ADDRESS] thanks"),
    ("Sent to 77 Mass Ave #5 and nobody came", "Sent to [ADDRESS] and nobody came"),
    ("My address: 8 Rosewood Court, Leeds LS1 4AP", "My address: [ADDRESS]"),
    ("box dumped outside 12 Main street again", "box dumped outside [ADDRESS] again"),
    ("12-14 Queen's Road East, Hong Kong is the shop", "[ADDRESS], Hong Kong is the shop"),
]

ADDRESSES_ZH = [
    ("上海市浦东新区张江路123号5栋1单元402室", "[ADDRESS]"),
    ("北京市朝阳区建国路88号", "[ADDRESS]"),
    ("我家在上海市浦东新区张江路123号5栋1单元402室，面条很好吃", "我家在[ADDRESS]，面条很好吃"),
    ("收货地址:浙江省杭州市西湖区文三路100号，快递太慢", "收货地址:[ADDRESS]，快递太慢"),
    ("寄到杭州市西湖区文三路100号", "寄到[ADDRESS]"),
    ("在中山北路123弄4号买的", "在[ADDRESS]买的"),
    ("我住在3号楼502室，隔音很差", "我住在[ADDRESS]，隔音很差"),
    ("住在阳光花园3栋2单元501", "住在[ADDRESS]"),
    ("我住在阳光小区5号楼", "我住在[ADDRESS]"),
    ("地址：广东省深圳市南山区科技园路1号A座1001", "地址：[ADDRESS]"),
    ("楼下张江路123号那家店很好吃", "楼下[ADDRESS]那家店很好吃"),
    ("成都市武侯区人民南路四段1号", "[ADDRESS]"),
    ("上海市浦东新区张江路123号 5栋 1单元 402室", "[ADDRESS]"),
    ("2024年中山路5号开了新店", "2024年[ADDRESS]开了新店"),
    ("我家小区3号楼502室收不到快递", "我家小区[ADDRESS]收不到快递"),
]

NOT_ADDRESSES = [
    # English: no house number, a count or rank, a product, a headline
    "I live near the road",
    "the 3rd street food stall was better",
    "5 stars, would buy again",
    "Top 5 Food Street stalls in town",
    "The 3 Flash Drive models all failed",
    "Level 2 Food Court was packed",
    "10 Best Places to eat noodles",
    "We waited 20 Minutes On The Road",
    "Version 2 Road Map looks good",
    "I bought 2 Cup Noodles on Main Street",
    "Rated 4 Great Way to start the day",
    "Chapter 7 Silk Road was my favourite",
    "order #12345 shipped from the warehouse on Oak Street",
    "the noodles cost $5 at Main St",
    "Spicy Road noodles, 2 packs for 5 dollars",
    # Chinese: numbers, dates, lines, floors, districts and roads without a house number
    "第2次买了，还是很好吃",
    "面条很好吃",
    "这两款的区别很大",
    "号码不对",
    "3月5号到货，包装破了",
    "地铁2号线很挤",
    "2室1厅住着很舒服",
    "住3楼，电梯坏了",
    "1号楼2层的店关门了",
    "商场A座3楼的店",
    "北京市朝阳区很好吃的面",
    "去了南京路，东西好吃",
    "我们小区3号楼的快递柜坏了",
    "第3单元的课文",
    "买了5包，还送了2个碗",
    "辣度3级，5星好评",
    "路上堵车，晚了2小时",
    "康师傅红烧牛肉面，5号发货",
    "张江路与科苑路交叉口那家店",
]


@pytest.mark.parametrize("text,expected", ADDRESSES_EN + ADDRESSES_ZH)
def test_addresses_are_redacted(text, expected):
    out, found = redact(text)
    assert out == expected
    assert found == {"ADDRESS": 1}


@pytest.mark.parametrize("text", NOT_ADDRESSES)
def test_ordinary_text_is_left_exactly_as_written(text):
    out, found = redact(text)
    assert out == text
    assert "ADDRESS" not in found


def test_each_address_is_counted():
    out, found = redact(
        "寄到杭州市西湖区文三路100号，或者北京市朝阳区建国路88号, "
        "or 221B Baker Street, London NW1 6XE"
    )
    assert out == "寄到[ADDRESS]，或者[ADDRESS], or [ADDRESS]"
    assert found == {"ADDRESS": 3}


def test_addresses_next_to_other_personal_data():
    text = "Call 13812345678 or li.wei@example.com, or come to 北京市朝阳区建国路88号"
    out, found = redact(text)
    assert out == "Call [PHONE] or [EMAIL], or come to [ADDRESS]"
    assert found == {"PHONE": 1, "EMAIL": 1, "ADDRESS": 1}


def test_mask_mode_keeps_the_ends_of_an_address():
    out, found = redact("我家在上海市浦东新区张江路123号5栋1单元402室，面条很好吃", PiiMode.mask)
    assert found == {"ADDRESS": 1}
    assert out.startswith("我家在上海*") and out.endswith("*2室，面条很好吃")
    assert "张江路" not in out and "123" not in out and "402" not in out
    assert len(out) == len("我家在上海市浦东新区张江路123号5栋1单元402室，面条很好吃")

    out, found = redact("I live at 221B Baker Street, London NW1 6XE", PiiMode.mask)
    assert found == {"ADDRESS": 1}
    assert out == "I live at 22" + "*" * (len("221B Baker Street, London NW1 6XE") - 4) + "XE"


def test_keep_mode_leaves_addresses():
    text = "I live at 221B Baker Street; 寄到杭州市西湖区文三路100号"
    assert redact(text, PiiMode.keep) == (text, {})


def test_modes_leave_ordinary_text_alone():
    for mode in PiiMode:
        for text in NOT_ADDRESSES:
            assert redact(text, mode) == (text, {})


@pytest.mark.parametrize(
    "text",
    [
        "区" * 20_000,
        "市区" * 10_000 + "1号",
        "1栋" * 10_000,
        "1 Main Main Main " * 3_000,
        "A" * 20_000,
        "12 Main Street, " * 5_000,
    ],
)
def test_long_repetitive_text_is_handled_quickly(text):
    import time

    start = time.perf_counter()
    redact(text)
    assert time.perf_counter() - start < 2.0


# --- at ingest -----------------------------------------------------------------------------

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def _rec(ext, text, source="weibo"):
    return {
        "source": source,
        "channel": "social",
        "external_id": ext,
        "text": text,
        "created_at": T0.isoformat(),
    }


def test_ingest_stores_addresses_redacted_per_source_mode_and_counts_them(
    sqlite_url, make_runtime, fake_scorer, monkeypatch
):
    rt = make_runtime(
        sqlite_url,
        fake_scorer,
        ingest={"pii_mode": "redact", "pii_mode_by_source": {"hotline": "mask", "shop": "keep"}},
    )
    preparer = rt.preparer
    found: dict[str, dict[str, int]] = {}
    prepare = preparer.prepare

    def recording(item):
        p = prepare(item)
        found[p.item.external_id] = p.pii_found
        return p

    monkeypatch.setattr(preparer, "prepare", recording)
    rows = [
        _rec(
            "en",
            "Box crushed. I live at 221B Baker Street, London NW1 6XE, mail li.wei@example.com",
        ),
        _rec("zh", "寄到上海市浦东新区张江路123号5栋1单元402室，包装破了，电话13812345678"),
        _rec("masked", "我家在北京市朝阳区建国路88号，面条很好吃", source="hotline"),
        _rec("kept", "I live at 221B Baker Street, great noodles", source="shop"),
        _rec("plain", "I live near the road; 第2次买，面条很好吃，5 stars"),
    ]
    report = rt.ingest_service().ingest(list(enumerate(rows)))
    assert report.counts["created"] == 5
    ids = {r.external_id: r.id for r in report.results}
    with rt.sessions() as s:
        stored = {ext: repo.get_feedback(s, feedback_id=i).text for ext, i in ids.items()}

    assert stored["en"] == "Box crushed. I live at [ADDRESS], mail [EMAIL]"
    assert stored["zh"] == "寄到[ADDRESS]，包装破了，电话[PHONE]"
    assert stored["masked"].startswith("我家在北京*") and stored["masked"].endswith(
        "*8号，面条很好吃"
    )
    assert "建国路" not in stored["masked"]
    assert stored["kept"] == rows[3]["text"]
    assert stored["plain"] == rows[4]["text"]

    assert found["en"] == {"EMAIL": 1, "ADDRESS": 1}
    assert found["zh"] == {"PHONE": 1, "ADDRESS": 1}
    assert found["masked"] == {"ADDRESS": 1}
    assert found["kept"] == {} and found["plain"] == {}
