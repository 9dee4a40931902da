"""The Python examples in the README and docs run as written, top to bottom."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from types import CodeType

import pytest

ROOT = Path(__file__).parent.parent
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


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
        code: CodeType = compile(
            block, f"{document}[{index}]", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)
        if result is not None:
            await result
