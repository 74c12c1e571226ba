"""Settings: an attrs class from a TOML file and environment variables, every problem listed, secrets masked."""

from __future__ import annotations

import logging
from pathlib import Path

import attrs
import pytest

from supervisors import Secret, SettingsError, load_settings, masked_settings


@attrs.frozen
class Smtp:
    host: str
    port: int = attrs.field(default=25, validator=attrs.validators.in_(range(1, 65536)))
    password: Secret[str] = attrs.Factory(lambda: Secret(""))


@attrs.frozen
class MailerSettings:
    db_path: Path
    workers: int = attrs.field(validator=attrs.validators.ge(1))
    debug: bool = False
    ratio: float = 0.5
    admins: list[str] = attrs.Factory(list)
    smtp: Smtp = Smtp(host="localhost")
    api_token: Secret[str] = attrs.Factory(lambda: Secret(""))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "app.toml"
    path.write_text(text)
    return path


def test_settings_load_from_toml_with_nested_tables_and_defaults(tmp_path: Path) -> None:
    """TOML keys are field names; a nested attrs class is a table; defaults fill the rest."""
    path = write(tmp_path, 'db_path = "jobs.db"\nworkers = 4\nadmins = ["ann"]\n[smtp]\nhost = "mail"\n')
    settings = load_settings(MailerSettings, toml=path)
    assert settings == MailerSettings(
        db_path=Path("jobs.db"), workers=4, admins=["ann"], smtp=Smtp(host="mail")
    )


def test_environment_overrides_toml_field_by_field(tmp_path: Path) -> None:
    """A variable (prefix + FIELD, OUTER__INNER when nested) wins over the file's key; the rest stays."""
    path = write(tmp_path, 'db_path = "jobs.db"\nworkers = 4\n[smtp]\nhost = "mail"\nport = 2525\n')
    env = {
        "APP_WORKERS": "8",
        "APP_DEBUG": "yes",
        "APP_ADMINS": "ann, bob",
        "APP_SMTP__PORT": "587",
        "APP_SMTP__PASSWORD": "hunter2",
        "OTHER_WORKERS": "99",
    }
    settings = load_settings(MailerSettings, env_prefix="APP_", toml=path, environ=env)
    assert settings.workers == 8
    assert settings.debug is True
    assert settings.admins == ["ann", "bob"]
    assert settings.smtp == Smtp(host="mail", port=587, password=Secret("hunter2"))
    assert settings.smtp.password.reveal() == "hunter2"
    assert settings.db_path == Path("jobs.db")


def test_a_nested_table_given_in_part_keeps_its_default_for_the_rest() -> None:
    """Overriding one nested field (APP_SMTP__PASSWORD) keeps the other fields of the nested default."""
    env = {"APP_DB_PATH": "x.db", "APP_WORKERS": "1", "APP_SMTP__PASSWORD": "pw"}
    settings = load_settings(MailerSettings, env_prefix="APP_", environ=env)
    assert settings.smtp == Smtp(host="localhost", port=25, password=Secret("pw"))


def test_settings_from_a_toml_section(tmp_path: Path) -> None:
    """``section`` reads one table of a shared file."""
    path = write(tmp_path, '[services.mailer]\ndb_path = "m.db"\nworkers = 2\n')
    assert load_settings(MailerSettings, toml=path, section="services.mailer").workers == 2
    with pytest.raises(SettingsError, match=r"has no table \[services.other\]"):
        load_settings(MailerSettings, toml=path, section="services.other")


def test_settings_errors_list_every_field_naming_the_variable_or_key(tmp_path: Path) -> None:
    """Every conversion problem at once: each names the variable or the key it came from, or how to set it."""
    path = write(tmp_path, 'workers = "many"\n[smtp]\nport = "x"\n')
    env = {"APP_DEBUG": "maybe", "APP_RATIO": "half"}
    with pytest.raises(SettingsError) as info:
        load_settings(MailerSettings, env_prefix="APP_", toml=path, environ=env)
    where = repr(str(path))
    assert sorted(info.value.problems) == sorted([
        f"environment variable APP_DB_PATH or key 'db_path' in {where}: required, but not set",
        f"key 'workers' in {where}: expected an integer (got 'many')",
        "environment variable APP_DEBUG: expected a boolean: true/false, 1/0, yes/no or on/off (got 'maybe')",
        "environment variable APP_RATIO: expected a number (got 'half')",
        f"key 'smtp.port' in {where}: expected an integer (got 'x')",
    ])
    assert str(info.value).startswith("invalid settings MailerSettings (5 problems):\n  - ")


def test_settings_validators_all_run_and_every_failure_is_listed() -> None:
    """Once the values convert, every attrs validator runs (nested ones too) and all failures are listed."""
    env = {"APP_DB_PATH": "x.db", "APP_WORKERS": "0", "APP_SMTP__HOST": "mail", "APP_SMTP__PORT": "70000"}
    with pytest.raises(SettingsError) as info:
        load_settings(MailerSettings, env_prefix="APP_", environ=env)
    problems = info.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("environment variable APP_WORKERS: 'workers' must be >= 1: 0")
    assert problems[1].startswith("environment variable APP_SMTP__PORT: 'port' must be in range(1, 65536)")


def test_missing_or_broken_toml_file_is_a_settings_error(tmp_path: Path) -> None:
    """A missing file or bad TOML names the file."""
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(MailerSettings, toml=tmp_path / "nope.toml")
    with pytest.raises(SettingsError, match="is not valid TOML"):
        load_settings(MailerSettings, toml=write(tmp_path, "workers = = 1"))


def test_secrets_are_masked_in_repr_str_logs_and_masked_settings(caplog: pytest.LogCaptureFixture) -> None:
    """A Secret field shows '***' in the settings' repr, in log lines and in masked_settings()."""
    env = {"APP_DB_PATH": "x.db", "APP_WORKERS": "1", "APP_API_TOKEN": "s3cr3t", "APP_SMTP__PASSWORD": "hunter2"}
    settings = load_settings(MailerSettings, env_prefix="APP_", environ=env)
    with caplog.at_level(logging.INFO):
        logging.getLogger("app").info("settings: %s", settings)
        logging.getLogger("app").info("token: %s", settings.api_token)
    shown = repr(settings) + str(settings.api_token) + caplog.text + repr(masked_settings(settings))
    assert "s3cr3t" not in shown
    assert "hunter2" not in shown
    assert "api_token=Secret('***')" in repr(settings)
    assert "token: ***" in caplog.text
    assert masked_settings(settings)["api_token"] == "***"
    assert masked_settings(settings)["smtp"] == {"host": "localhost", "port": 25, "password": "***"}
    assert settings.api_token.reveal() == "s3cr3t"


def test_load_settings_refuses_a_class_that_is_not_attrs() -> None:
    """Only attrs classes describe settings."""
    with pytest.raises(TypeError, match="attrs class"):
        load_settings(dict)
