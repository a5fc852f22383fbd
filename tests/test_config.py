from pathlib import Path

import pytest

from leadprep.config import find_config_path, load_config
from leadprep.errors import ConfigError
from tests.helpers import write_config


def test_example_config_is_valid(monkeypatch):
    example = Path(__file__).parent.parent / "config.example.yaml"
    config = load_config(example)
    assert config.crm.kind == "file"
    assert config.crm.file.path == example.parent / "deals.csv"  # relative to the file
    assert config.teams[0].reps == ["alex@example.com", "sam@example.com"]


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path):
    path = write_config(
        tmp_path / "c.yaml",
        """
crm: {kind: fax}
teams:
  - manager: {name: Dana, email: not-an-email}
    reps: [ok@example.com, also bad]
signals:
  stale: {days: -1}
  single_threaded: {min_contacts: two}
review: {focus_deals: 3, colour: red}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "6 problems" in text
    for expected in (
        "crm.kind: Input should be 'hubspot', 'salesforce', 'file' or 'demo'",
        "teams[0].manager.email: 'not-an-email' is not an email address",
        "teams[0].reps[1]: 'also bad' is not an email address",
        "signals.stale.days: Input should be greater than or equal to 1",
        "signals.single_threaded.min_contacts: Input should be a valid integer",
        "review.colour: unknown key",
    ):
        assert expected in text


def test_env_references_are_resolved_and_missing_ones_named(tmp_path, monkeypatch):
    path = write_config(
        tmp_path / "c.yaml",
        """
crm:
  kind: hubspot
  hubspot: {access_token: "${HS_TOKEN_FOR_TEST}"}
  salesforce: {password: "${SF_NOT_NEEDED}"}
""",
    )
    monkeypatch.delenv("HS_TOKEN_FOR_TEST", raising=False)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "crm.hubspot.access_token: environment variable HS_TOKEN_FOR_TEST is not set" in text
    assert "SF_NOT_NEEDED" not in text  # another CRM's section does not matter

    monkeypatch.setenv("HS_TOKEN_FOR_TEST", "pat-na1-secret-value-123")
    config = load_config(path)
    assert config.crm.hubspot.access_token.get_secret_value() == "pat-na1-secret-value-123"
    assert "pat-na1-secret-value-123" not in repr(config)
    assert "pat-na1-secret-value-123" not in str(config.model_dump())


def test_yaml_syntax_error_points_at_the_line(tmp_path):
    path = write_config(tmp_path / "c.yaml", "crm:\n  kind: file\n  file: {path: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(path)


def test_file_kind_needs_a_path(tmp_path):
    path = write_config(tmp_path / "c.yaml", "crm: {kind: file}\n")
    with pytest.raises(ConfigError, match=r"no crm\.file section"):
        load_config(path)


def test_config_lookup_order(tmp_path, monkeypatch):
    assert find_config_path(None) is None
    local = write_config(tmp_path / "leadprep.yaml", "{}\n")
    assert find_config_path(None) == local
    other = write_config(tmp_path / "other.yaml", "{}\n")
    monkeypatch.setenv("LEADPREP_CONFIG", str(other))
    assert find_config_path(None) == other
    explicit = write_config(tmp_path / "x.yaml", "{}\n")
    assert find_config_path(explicit) == explicit
    with pytest.raises(ConfigError, match="does not exist"):
        find_config_path(tmp_path / "missing.yaml")


def test_state_path_precedence(tmp_path, monkeypatch):
    path = write_config(tmp_path / "c.yaml", "state: {path: sub/state.db}\n")
    config = load_config(path)
    assert config.state_path() == tmp_path / "state.db"  # $LEADPREP_STATE (set by conftest) wins
    monkeypatch.delenv("LEADPREP_STATE")
    assert config.state_path() == tmp_path / "sub" / "state.db"
