import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.ingest.mapping import ColumnMapping, MappingError
from service.ingest.readers import ReaderError, RowError, count_rows, read_records
from service.ingest.validate import Validator

HEADER = "source,channel,external_id,text,created_at,region,rating,age_group\n"


def _validate_all(path, mapping=None, max_chars=20_000):
    v = Validator(mapping, max_text_chars=max_chars)
    good, bad = [], []
    for row, rec in read_records(path):
        got = rec if isinstance(rec, RowError) else v.validate(row, rec)
        (bad if isinstance(got, RowError) else good).append(got)
    return good, bad


def test_csv_rows_map_onto_the_dictionary_and_extra_columns_become_attributes(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text(
        HEADER
        + 'tmall,review,1,"Great taste, fast delivery",2026-05-04T10:00:00+08:00,East,4.5,18-24\n',
        encoding="utf-8",
    )
    (item,), bad = _validate_all(p)
    assert bad == []
    assert item.source == "tmall" and item.channel.value == "review"
    assert item.created_at == datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
    assert item.attributes == {"age_group": "18-24"}
    assert item.rating == 4.5 and item.rating_scale == 5


def test_malformed_file_gives_one_clear_error_per_bad_row_and_keeps_good_rows(tmp_path):
    p = tmp_path / "bad.csv"
    rows = [
        "tmall,review,1,good one,2026-05-04T10:00:00Z,East,4,18-24",  # 2 good
        "tmall,review,2,fine,not-a-date,East,4,18-24",  # 3 bad date
        "tmall,review,3,,2026-05-04T10:00:00Z,East,4,18-24",  # 4 empty text
        'tmall,review,4,"' + "x" * 1_048_576 + '",2026-05-04T10:00:00Z,East,4,18-24',  # 5 1 MB text
        "tmall,review,5,ok,2026-05-04T10:00:00Z,East,five,18-24",  # 6 wrong type
        "tmall,review,6,too few columns",  # 7 missing columns
        "tmall,shouting,7,ok,2026-05-04T10:00:00Z,East,4,18-24",  # 8 bad channel
        "tmall,review,8,fine again,2026-05-05,East,,35-44",  # 9 good (naive date)
    ]
    data = (HEADER + "\n".join(rows) + "\n").encode("utf-8")
    data += (
        b"tmall,review,9,caf\xe9 bad bytes,2026-05-04T10:00:00Z,East,4,18-24\n"  # 10 invalid UTF-8
    )
    data += b"tmall,review,10,last good row,2026-05-06T00:00:00Z,West,3,45+\n"  # 11 good
    p.write_bytes(data)
    good, bad = _validate_all(p)
    assert [g.external_id for g in good] == ["1", "8", "10"]
    by_row = {e.row: e for e in bad}
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 10]
    assert "created_at" in by_row[3].fields and "cannot parse" in by_row[3].reason
    assert by_row[4].fields == ["text"]
    assert "too long" in by_row[5].reason and "1,048,576" in by_row[5].reason
    assert by_row[6].fields == ["rating"]
    assert "expected 8 columns, found 4" in by_row[7].reason
    assert by_row[8].fields == ["channel"]
    assert "invalid UTF-8" in by_row[10].reason and by_row[10].fields == ["text"]
    assert all(str(e).startswith(f"row {e.row}") for e in bad)


def test_missing_required_columns_are_named(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("id,body\n1,hello there\n", encoding="utf-8")
    _, (err,) = _validate_all(p)
    assert {"source", "external_id", "created_at", "text"} <= set(err.fields)


def test_column_mapping_by_flags_and_defaults(tmp_path):
    p = tmp_path / "export.csv"
    p.write_text("review_id,body,date,stars\nA1,Loved it,2026-05-04 10:00:00,5\n", encoding="utf-8")
    m = ColumnMapping.from_pairs(
        ["external_id=review_id", "text=body", "created_at=date", "rating=stars"],
        ["source=jd", "channel=review"],
    )
    (item,), bad = _validate_all(p, m)
    assert not bad and item.external_id == "A1" and item.source == "jd" and item.rating == 5
    assert item.attributes == {}
    with pytest.raises(MappingError, match="unknown field 'txt'"):
        ColumnMapping.from_pairs(["txt=body"])


def test_mapping_file(tmp_path):
    f = tmp_path / "map.yaml"
    f.write_text(
        "columns: {text: comment, external_id: cid, created_at: ts}\ndefaults: {source: survey2026, channel: survey}\nignore: [internal]\n"
    )
    p = tmp_path / "s.jsonl"
    p.write_text(
        json.dumps({"cid": 7, "comment": "ok", "ts": 1767225600, "internal": "x", "tier": "vip"})
        + "\n"
    )
    (item,), bad = _validate_all(p, ColumnMapping.from_pairs(file=f))
    assert not bad
    assert (
        item.external_id == "7"
        and item.created_at.year == 2026
        and item.attributes == {"tier": "vip"}
    )


def test_jsonl_bad_lines_are_reported_by_line(tmp_path):
    p = tmp_path / "a.jsonl"
    ok = {"source": "app", "external_id": "1", "text": "nice", "created_at": "2026-05-04T00:00:00Z"}
    p.write_bytes(
        b"\n".join(
            [
                json.dumps(ok).encode(),
                b"{not json",
                b"[1,2]",
                b'{"source":"app","external_id":"2","text":"\xff","created_at":"2026-05-04"}',
            ]
        )
        + b"\n"
    )
    good, bad = _validate_all(p)
    assert len(good) == 1
    assert [(e.row, e.reason.split(":")[0]) for e in bad] == [
        (2, "invalid JSON"),
        (3, "expected a JSON object, found list"),
        (4, "invalid UTF-8 at byte 42"),
    ]


def test_parquet_streams_in_batches(tmp_path):
    p = tmp_path / "a.parquet"
    n = 10_000
    pq.write_table(
        pa.table(
            {
                "source": ["s"] * n,
                "external_id": [str(i) for i in range(n)],
                "text": [f"text {i}" for i in range(n)],
                "created_at": [datetime(2026, 5, 4, tzinfo=UTC)] * n,
            }
        ),
        p,
        row_group_size=1000,
    )
    it = read_records(p)
    first = next(it)
    assert first[0] == 1 and first[1]["external_id"] == "0"
    assert count_rows(p) == n and sum(1 for _ in it) == n - 1


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ReaderError, match="no such file"):
        read_records(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(ReaderError, match="pass --format"):
        read_records(tmp_path / "x.xlsx")
