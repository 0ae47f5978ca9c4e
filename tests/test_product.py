"""The product as a user installs it: its name, its command, and the per-user cache an upgrade keeps."""
from __future__ import annotations

import tomllib

from conftest import PROJECT_ROOT

from pipelines.files import user_cache


def test_the_distribution_and_its_command_carry_the_products_name():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ml-pipelines"
    assert project["scripts"] == {"ml-pipelines": "pipelines.cli:main"}


def test_the_cache_is_the_products_and_an_earlier_versions_is_used_until_moved(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache("envs") == tmp_path / "ml-pipelines" / "envs"
    (tmp_path / "purchase-pipelines" / "envs").mkdir(parents=True)  # what 0.1 built
    assert user_cache("envs") == tmp_path / "purchase-pipelines" / "envs"
    (tmp_path / "ml-pipelines").mkdir()  # moved, or made by this version: the earlier one is no longer read
    assert user_cache("envs") == tmp_path / "ml-pipelines" / "envs"
    monkeypatch.setenv("PIPELINES_ENV_CACHE", str(tmp_path / "mine"))
    assert user_cache("envs", "PIPELINES_ENV_CACHE") == tmp_path / "mine"
