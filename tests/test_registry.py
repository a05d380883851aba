"""Plugins found through real entry points of packages installed with pip; failures isolated."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli_fresh as run_cli

PKGS = Path(__file__).parent / "plugin_pkgs"


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory):
    for name in ("goodplug", "badplug"):
        # copy so the build leaves nothing in the source tree
        src = tmp_path_factory.mktemp(name) / name
        subprocess.run(["cp", "-r", str(PKGS / name), str(src)], check=True)
        pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(src))
    yield
    pip("uninstall", "-y", "magtask-goodplug", "magtask-badplug")


def test_list_heads_json_contract():
    rows = json.loads(run_cli("list-heads", "--json", check=True).stdout)
    assert isinstance(rows, list) and {"mlp-classifier", "transformer-predictor"} <= {r["name"] for r in rows}
    for r in rows:
        assert {"name", "task", "aliases", "package", "version", "description"} <= set(r)


def test_third_party_head_listed_with_its_distribution(installed_plugins):
    proc = run_cli("list-heads", "--json", check=True)
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    toy = rows["toy-head"]
    assert toy["task"] == "toy-task" and toy["aliases"] == ["toy"]
    assert toy["package"] == "magtask-goodplug" and toy["version"] == "1.2.3"
    assert "toy-impostor" not in rows and "no-build" not in rows


def test_each_failure_is_one_warning_naming_the_distribution(installed_plugins):
    proc = run_cli("list-heads", "--json", check=True)
    warnings = [l for l in proc.stderr.splitlines() if l.startswith("warning:")]
    text = "\n".join(warnings)
    assert len(warnings) == 5, proc.stderr
    assert all("magtask-badplug" in w for w in warnings)
    assert "badimport" in text and "ImportError" in text
    assert "boom while registering" in text
    assert "no-build" in text and "build is not callable" in text
    assert "'toy' already taken by magtask-goodplug" in text
    assert "cannot add my command" in text


def test_plugins_command_and_plugin_subcommand(installed_plugins):
    data = json.loads(run_cli("plugins", "--json", check=True).stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["goodplug"]["heads"] == ["toy-head"] and by_name["goodplug"]["commands"]
    assert by_name["badimport"]["loaded"] is False
    assert {f["plugin"] for f in data["failures"]} == {"badimport", "badhook", "badspec", "dupname", "badcommand"}
    assert run_cli("toy-hello", check=True).stdout.strip() == "hello from goodplug"


def test_magtask_plugins_env_loads_only_named(installed_plugins):
    proc = run_cli("plugins", "--json", env={"MAGTASK_PLUGINS": "goodplug"}, check=True)
    data = json.loads(proc.stdout)
    names = {p["name"] for p in data["plugins"]}
    assert "goodplug" in names and "badimport" not in names and data["failures"] == []
    proc = run_cli("plugins", "--json", env={"MAGTASK_PLUGINS": ""}, check=True)
    names = {p["package"] for p in json.loads(proc.stdout)["plugins"]}
    assert names <= {"magtask"}


def test_run_warns_of_failed_plugins_and_names_the_one_behind_a_missing_head(installed_plugins, tmp_path):
    proc = run_cli("run", "classify", "badimport", "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    warnings = [l for l in lines if l.startswith("warning:")]
    assert len(warnings) == 5 and all("magtask-badplug" in w for w in warnings)
    error = [l for l in lines if l.startswith("Error:")]
    assert len(error) == 1 and "head 'badimport' is not available: plugin 'badimport' from magtask-badplug: " \
        "failed to load: ImportError" in error[0], proc.stderr
    proc = run_cli("run", "classify", "no-such-head", "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 2 and "unknown head 'no-such-head'" in proc.stderr
    assert "Plugins that failed to load: plugin 'badimport'" in proc.stderr
    assert not (tmp_path / "r").exists()
