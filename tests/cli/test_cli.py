import json

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from tests.cli._radar import radar

COMMANDS = [
    "ingest",
    "score",
    "rescore",
    "serve",
    "demo",
    "demo-data",
    "db upgrade",
    "db current",
    "models build",
]


def _options_of(command_path: list[str]):
    import typer.main

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("radar", list(command_path) + ["--help"], resilient_parsing=True)
    for name in command_path:
        cmd = cmd.get_command(ctx, name)
    return [p for p in cmd.params if p.param_type_name == "option"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_documents_every_option(command):
    runner = CliRunner()
    res = runner.invoke(
        app, command.split() + ["--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"}
    )
    assert res.exit_code == 0, res.output
    for opt in _options_of(command.split()):
        assert opt.help, f"{command}: option {opt.name} has no help text"
        assert opt.opts[0] in res.output
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})
    assert command.split()[0] in top.output


def _radar(args, tmp_path, **env):
    return radar(args, f"sqlite:///{tmp_path}/radar.db", **env)


def test_ingest_malformed_file_reports_each_bad_row_and_stores_good_ones(tmp_path):
    src = tmp_path / "mixed.csv"
    head = "source,channel,external_id,text,created_at,region,rating,age_group\n"
    good = [
        'shop,review,1,"Lovely taste, will buy again",2026-05-04T10:00:00Z,East,5,18-24',
        'shop,review,2,"The box arrived crushed",2026-05-05T10:00:00Z,West,1,45+',
        'shop,review,3,"味道很好，物流也快",2026-05-06T10:00:00Z,North,4,25-34',
    ]
    bad = [
        'shop,review,4,"fine",31/31/2026,East,3,18-24',
        "shop,review,5,,2026-05-04T10:00:00Z,East,3,18-24",
        'shop,review,6,"rating is words",2026-05-04T10:00:00Z,East,great,18-24',
        'shop,review,7,"' + "long " * 220_000 + '",2026-05-04T10:00:00Z,East,3,18-24',
        "shop,review,8",
    ]
    data = (head + "\n".join(good[:2] + bad + good[2:]) + "\n").encode()
    data += b'shop,review,9,"bad \xff\xfe bytes",2026-05-04T10:00:00Z,East,3,18-24\n'
    src.write_bytes(data)
    errors = tmp_path / "errors.jsonl"
    res = _radar(["ingest", str(src), "--errors", str(errors)], tmp_path)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["created"] == 3 and summary["rejected"] == 6 and summary["stored_total"] == 3
    rejected = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [r["row"] for r in rejected] == [4, 5, 6, 7, 8, 10]
    for r in rejected:
        assert r["reason"] and f"row {r['row']}" in res.stderr
    assert rejected[0]["field"].startswith("created_at")
    assert rejected[3]["reason"].startswith("text: too long")
    assert rejected[5]["reason"] == "invalid UTF-8"
    again = _radar(["ingest", str(src), "--fail-on-reject"], tmp_path)
    assert again.returncode == 3
    summary2 = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary2["unchanged"] == 3 and summary2["created"] == 0 and summary2["stored_total"] == 3


def test_mapping_flags_and_bad_mapping(tmp_path):
    src = tmp_path / "export.jsonl"
    src.write_text(
        json.dumps({"rid": "r1", "body": "Super easy to prepare, great value", "ts": "2026-05-04"})
        + "\n"
    )
    res = _radar(
        [
            "ingest",
            str(src),
            "--map",
            "external_id=rid",
            "--map",
            "text=body",
            "--map",
            "created_at=ts",
            "--set",
            "source=survey",
            "--set",
            "channel=survey",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["created"] == 1
    res = _radar(["ingest", str(src), "--map", "nonsense"], tmp_path)
    assert res.returncode == 2 and "FIELD=VALUE" in res.stderr


def test_db_commands_and_bad_config(tmp_path):
    res = _radar(["db", "upgrade"], tmp_path)
    assert res.returncode == 0 and json.loads(res.stdout)["revision"] == "0015"
    res = _radar(["db", "current"], tmp_path)
    assert json.loads(res.stdout) == {"revision": "0015", "head": "0015"}
    res = _radar(["db", "current"], tmp_path, RADAR_LIMITS__MAX_BATCH_ITEMS="lots")
    assert res.returncode == 2 and "max_batch_items" in res.stderr
