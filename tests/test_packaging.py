"""What the install needs is declared, not left to a pip version's handling of extras."""

from __future__ import annotations

import importlib
import re
import tomllib

from tests.conftest import REPO_ROOT


def test_lxml_html_clean_is_a_direct_dependency() -> None:
    # pip < 23.3 skips lxml's [html_clean] extra; jusText (through trafilatura) imports
    # lxml.html.clean, and the worker died at import without it.
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower() for requirement in project["dependencies"]}
    assert {"lxml_html_clean", "lxml"} <= {name.replace("-", "_") for name in names}
    importlib.import_module("lxml.html.clean")
    importlib.import_module("justext")
