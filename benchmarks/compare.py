"""Benchmarks of two versions of loremaster in one run, side by side.

    python benchmarks/compare.py [--against REV] [--quick] [bench_update.py ...]

Checks REV (default: the commit before HEAD) out into a temporary git worktree and runs
each benchmark script (this checkout's) twice: importing REV's package, then this
checkout's. The figures of each pair of lines are printed before | after. Default
benchmarks: bench_update, bench_storage, bench_messages, bench_versions, bench_sync.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [
    "bench_update.py",
    "bench_storage.py",
    "bench_messages.py",
    "bench_versions.py",
    "bench_sync.py",
]
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")


def option(name: str, default: str) -> str:
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def run_bench(script: str, source: Path, quick: bool) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    command = [sys.executable, str(ROOT / "benchmarks" / script), *(["--quick"] if quick else [])]
    done = subprocess.run(
        command, env=env, cwd=ROOT / "benchmarks", capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"{script} failed against {source}:\n{done.stdout}\n{done.stderr}")
    return done.stdout.splitlines()


def side_by_side(before: list[str], after: list[str]) -> None:
    """This checkout's lines, each figure written `before -> after` where the two runs
    printed lines of the same shape."""
    for old, new in zip(before, after, strict=False):
        if NUMBER.sub("#", old) != NUMBER.sub("#", new):
            print(new)
            continue
        print(_paired(old, new))


def _paired(old: str, new: str) -> str:
    figures = iter(NUMBER.findall(old))

    def pair(found: re.Match[str]) -> str:
        was = next(figures)
        return was if was == found.group() else f"{was} -> {found.group()}"

    return NUMBER.sub(pair, new)


def main() -> None:
    quick = "--quick" in sys.argv
    rev = option("--against", "HEAD~1")
    named = [arg for arg in sys.argv[1:] if arg.endswith(".py")]
    with tempfile.TemporaryDirectory() as tmp:
        before_tree = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before_tree), rev],
            check=True,
            capture_output=True,
        )
        try:
            for script in named or DEFAULT:
                print(f"== {script}: {rev} -> this checkout")
                side_by_side(run_bench(script, before_tree, quick), run_bench(script, ROOT, quick))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_tree)],
                check=True,
            )


if __name__ == "__main__":
    main()
