"""The import contract `make lint` runs: imports point down the layers, and services never
import each other (pyproject.toml, [tool.importlinter])."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=source,
        env={"PYTHONPATH": str(source / "src"), "PATH": str(LINT_IMPORTS.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "loremaster", tmp_path / "src" / "loremaster")
    return tmp_path


def test_the_package_keeps_the_contract(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("sync/_stale.py", "from ..versioning import History"),  # a service importing another
        ("document/_records.py", "from ..manager import ContextManager"),  # pointing up
        ("storage/_types.py", "from ..document import Write"),
    ],
)
def test_an_import_against_the_layers_breaks_the_contract(
    tmp_path: Path, module: str, forbidden: str
) -> None:
    source = copy_of_the_package(tmp_path)
    path = source / "src" / "loremaster" / module
    text = path.read_text()
    anchor = "from __future__ import annotations\n"
    path.write_text(text.replace(anchor, anchor + forbidden + "  # noqa\n", 1))
    result = lint_imports(source)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
