"""The README's options table and the code's option specs cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from autolog.options import SPECS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_options_table_lists_every_option_with_its_variable() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `(AUTOLOG_\w+)` \|", README.read_text(), flags=re.M)
    assert dict(rows) == {name: spec.env for name, spec in SPECS.items()}


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in block] == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert (README.parent / script).is_file()
