"""The rule file: the shipped one parses; mistakes name the rule and the field."""

import pytest

from service.alerts.rules import AlertConfig, AlertConfigError, PreferenceShift
from service.config import Settings


def test_the_shipped_rule_file_parses():
    cfg = AlertConfig.from_yaml(Settings().alerts_path)
    assert {r.type for r in cfg.rules} >= {
        "preference_shift",
        "negative_surge",
        "crisis_spike",
        "severe_complaint",
    }
    assert isinstance(cfg.rules[0], PreferenceShift) and cfg.deadline_hours("L1") == 24


@pytest.mark.parametrize(
    "rules, expected",
    [
        (
            [{"name": "a", "type": "preference_shift", "bucket": "month"}],
            "rule 1 ('a'), field 'bucket'",
        ),
        (
            [{"name": "ok", "type": "negative_surge"}, {"name": "b", "type": "nonsense"}],
            "rule 2 ('b')",
        ),
        (
            [{"name": "c", "type": "threshold", "metric": "negative_share"}],
            "rule 1 ('c'): Value error, give `above` or `below`",
        ),
        (
            [{"name": "d", "type": "severe_complaint", "max_sentiment_score": 0.5}],
            "field 'max_sentiment_score'",
        ),
        (
            [
                {
                    "name": "d2",
                    "type": "severe_complaint",
                    "min_confidence": 0.9,
                    "max_confidence": 0.9,
                }
            ],
            "rule 1 ('d2'): Value error, `max_confidence` must be above `min_confidence`",
        ),
        (
            [{"name": "e", "type": "crisis_spike", "window_hourz": 3}],
            "field 'window_hourz': Extra inputs",
        ),
        (
            [{"name": "f", "type": "negative_surge"}, {"name": "f", "type": "negative_surge"}],
            "name 'f' is used twice",
        ),
        ([{"type": "negative_surge"}], "rule 1, field 'name'"),
    ],
)
def test_mistakes_name_the_rule_and_the_field(rules, expected):
    with pytest.raises(AlertConfigError) as exc:
        AlertConfig.parse({"rules": rules}, "alerts.yaml")
    assert expected in str(exc.value)


def test_a_broken_file_is_reported_by_the_cli(tmp_path, monkeypatch):
    import shutil

    from typer.testing import CliRunner

    from service.cli.main import app as cli
    from service.config import DEFAULT_CONFIG_DIR

    for name in ("base.yaml", "taxonomy.yaml", "competitors.yaml"):
        shutil.copy(DEFAULT_CONFIG_DIR / name, tmp_path / name)
    monkeypatch.setenv(
        "RADAR_CONFIG_DIR", str(tmp_path)
    )  # the CLI sets it; restored after the test
    (tmp_path / "alerts.yaml").write_text(
        "rules:\n  - name: x\n    type: preference_shift\n    history: 2\n"
    )
    res = CliRunner().invoke(
        cli,
        [
            "--config-dir",
            str(tmp_path),
            "--database-url",
            f"sqlite:///{tmp_path}/r.db",
            "alerts",
            "run",
        ],
    )
    assert res.exit_code == 2
    assert "rule 1 ('x'), field 'history'" in res.output.replace("\n", "")
