"""Loading plugins at start-up (app/plugins.py): entry points found through
importlib.metadata, each given its settings table; anything wrong is one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import plugin_samples
from tidings.app.plugins import SHIPPED, PluginLoadError, installed, load_plugins
from tidings.app.settings import Settings
from tidings.plugins.dlp import DlpPlugin

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", autouse=True)
def installed_samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield from plugin_samples.install(tmp_path_factory.mktemp("site"))


def test_plugins_load_in_order_with_their_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        plugins=["t-refusing", "dlp"],
        plugin_settings={"t-refusing": {"word": "nope"}, "dlp": {"words": ["机密"]}},
        plugins_fail_closed=["dlp"],
    )
    refusing, dlp = load_plugins(settings)
    assert (refusing.name, refusing.fail_closed, refusing.source) == (
        "t-refusing", False, "tidings-test-plugins 1.0"
    )
    assert isinstance(refusing.plugin, plugin_samples.Refusing)
    assert refusing.plugin.word == "nope" and refusing.ctx.settings == {"word": "nope"}
    assert isinstance(dlp.plugin, DlpPlugin) and dlp.fail_closed and dlp.plugin.words == 1
    with pytest.raises(TypeError):
        refusing.ctx.settings["word"] = "changed"  # type: ignore[index]  # read-only


def test_an_unknown_plugin_is_one_line_naming_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError) as refused:
        load_plugins(Settings(data_dir=tmp_path, plugins=["dpl"]))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("plugin 'dpl' is not installed: no entry point of that name")
    assert "dlp, t-bad-settings" in message


def test_a_plugin_refusing_its_settings_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match=r"^plugin 't-bad-settings': limit must be a number$"):
        load_plugins(Settings(data_dir=tmp_path, plugins=["t-bad-settings"]))
    bad_dlp = Settings(data_dir=tmp_path, plugins=["dlp"], plugin_settings={"dlp": {"action": 1}})
    with pytest.raises(PluginLoadError, match=r"^plugin 'dlp': action must be"):
        load_plugins(bad_dlp)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIDINGS_PLUGINS", "dlp, t-refusing")
    monkeypatch.setenv("TIDINGS_PLUGINS_FAIL_CLOSED", "dlp")
    monkeypatch.setenv("TIDINGS_PLUGIN_SETTINGS", '{"dlp": {"words": {"zh": ["机密"]}}}')
    settings = Settings(data_dir=tmp_path)
    assert settings.plugins == ["dlp", "t-refusing"]
    assert settings.plugins_fail_closed == ["dlp"]
    assert settings.plugin_settings == {"dlp": {"words": {"zh": ["机密"]}}}
    monkeypatch.setenv("TIDINGS_PLUGINS_FAIL_CLOSED", "other")
    with pytest.raises(ValueError, match="plugins_fail_closed names 'other'"):
        Settings(data_dir=tmp_path)
    monkeypatch.delenv("TIDINGS_PLUGINS_FAIL_CLOSED")
    monkeypatch.setenv("TIDINGS_PLUGINS", "dlp,../../etc")
    with pytest.raises(ValueError, match="not a plugin entry point name"):
        Settings(data_dir=tmp_path)


def test_settings_from_a_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "tidings.toml"
    config.write_text(
        'plugins = ["dlp"]\n'
        "[plugin_settings.dlp]\n"
        'action = "mask"\n'
        "[plugin_settings.dlp.words]\n"
        'secret_zh = ["机密", "绝密"]\n'
        'secret_en = ["confidential"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("TIDINGS_CONFIG", str(config))
    (dlp,) = load_plugins(Settings(data_dir=tmp_path))
    assert isinstance(dlp.plugin, DlpPlugin)
    assert dlp.plugin.action == "mask" and dlp.plugin.words == 3


def test_the_shipped_plugins_are_declared_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["tidings.plugins"] == SHIPPED
    assert installed()["dlp"].load() is DlpPlugin


def test_serve_with_an_unknown_plugin_stops_with_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tidings", "--data-dir", str(tmp_path), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"),
             "TIDINGS_PLUGINS": "no-such-plugin"},
    )
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith("error: plugin 'no-such-plugin' is not installed")
    assert not (tmp_path / "tidings.db").exists()  # stopped before anything was written


def test_the_plugins_command_lists_installed_and_enabled_ones(tmp_path: Path) -> None:
    site = tmp_path / "site"
    installing = plugin_samples.install(site)
    next(installing)
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), str(ROOT / "src")]),
           "TIDINGS_PLUGINS": "t-refusing,dlp", "TIDINGS_PLUGINS_FAIL_CLOSED": "dlp"}

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tidings", "--data-dir", str(tmp_path / "d"), "plugins",
             "list"], capture_output=True, text=True, timeout=60, env={**env, **extra},
        )

    try:
        out = run()
        assert out.returncode == 0, out.stderr
        rows = {line.split("│")[1].strip(): line for line in out.stdout.splitlines()
                if line.startswith("│")}
        assert "tidings-test-plugins 1.0" in rows["t-refusing"] and "yes (1)" in rows["t-refusing"]
        assert "yes (2)" in rows["dlp"] and "refuse" in rows["dlp"]
        assert " no " in rows["t-sleepy"]
        assert "t-refusing: loaded, hooks: before_message" in out.stdout
        bad = run(TIDINGS_PLUGIN_SETTINGS='{"dlp": {"action": "drop"}}')
        assert bad.returncode == 1
        assert bad.stderr.strip() == "error: plugin 'dlp': action must be 'refuse' or 'mask'"
    finally:
        next(installing, None)
