"""The README's settings table and .env.example stay in step with config.py."""

from __future__ import annotations

from config import env_example, settings_table
from self_test.conftest import ROOT


def test_readme_lists_every_setting_as_config_defines_it():
    assert settings_table() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_env_example_is_generated_from_config():
    assert (ROOT / ".env.example").read_text(encoding="utf-8") == env_example()


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n", 3)[:3]
    assert "make run" in head[1] and "make test" in head[1]
