"""The Python examples in the README and docs run as written, top to bottom."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from types import CodeType

import pytest

ROOT = Path(__file__).parent.parent
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
SCRIPT = re.compile(r"# (?P<name>\w+\.py): run it with `python (?P=name)`\n")


def python_blocks(document: str) -> list[str]:
    return BLOCK.findall((ROOT / document).read_text())


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if python_blocks(d)])
async def test_python_examples_run(
    document: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in [v for v in os.environ if v.startswith("CONTEXT_")]:
        monkeypatch.delenv(variable)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for index, block in enumerate(python_blocks(document)):
        script = SCRIPT.match(block)
        if script is not None:  # a file to save and run, as the reader is told to
            (tmp_path / script["name"]).write_text(block)
            ran = subprocess.run(
                [sys.executable, script["name"]],
                check=False,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert ran.returncode == 0, f"{document}[{index}]: {ran.stderr}"
            continue
        code: CodeType = compile(
            block, f"{document}[{index}]", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)
        if result is not None:
            await result
