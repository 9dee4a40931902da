"""``loremaster history``, ``version create``, ``rollback``, ``diff`` and ``branch ...``."""

from __future__ import annotations

import functools
from typing import cast

import click

from ..errors import BranchNotFound
from ..manager import ContextManager, MergeStrategy
from ..models import ContextVersion, MergeResult
from . import _render
from ._app import Options, cli, common_options

__all__ = ["branch", "diff", "history", "rollback", "version"]


@cli.command()
@common_options
@click.argument("context_id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--before", type=int, help="only versions numbered below this (paging)")
@click.option("--branch", default=None, help="only this branch's versions")
@click.option("--tag", default=None, help="only versions with this tag")
def history(
    options: Options,
    context_id: str,
    limit: int,
    before: int | None,
    branch: str | None,
    tag: str | None,
) -> None:
    """A context's versions, newest first."""

    async def work(cm: ContextManager) -> tuple[list[ContextVersion], str | None]:
        found = await cm.get_version_history(
            context_id, options.user_id, limit, before=before, branch=branch, tag=tag
        )
        if found or branch is None or before is not None or tag is not None:
            return found, None
        return found, await _why_no_versions(cm, context_id, options.user_id, branch)

    found, why = options.run(work)
    if why is not None and not options.as_json:
        _render.console.print(why, markup=False, highlight=False, soft_wrap=True)
        return
    options.show(found, _render.show_history)


async def _why_no_versions(
    cm: ContextManager, context_id: str, user_id: str | None, branch: str
) -> str:
    """Why `branch` lists no versions: it has none of its own yet (it starts at the
    version it forked from), or there is no such branch (`BranchNotFound`)."""
    held = next((b for b in await cm.list_branches(context_id, user_id) if b.name == branch), None)
    if held is None:
        raise BranchNotFound(context_id, branch)
    if held.base_version_id is None:
        return f"branch {branch} has no versions yet"
    before: int | None = None
    while True:  # the fork point's number and branch: page back until it is found
        page = await cm.get_version_history(context_id, user_id, 1000, before=before)
        fork = next((v for v in page if v.version_id == held.base_version_id), None)
        if fork is not None:
            where = f"version {fork.number} of {fork.branch}"
            break
        if len(page) < 1000:
            where = f"version {held.base_version_id}"
            break
        before = page[-1].number
    return f"branch {branch} has no versions of its own yet; it starts at {where}"


@cli.group()
def version() -> None:
    """Make and read versions."""


@version.command(name="create")
@common_options
@click.argument("context_id")
@click.option("--message", "-m", default="", help="why this version")
@click.option("--tag", "tags", multiple=True, help="repeat for several; tagged versions are kept")
@click.option("--branch", default="main", show_default=True)
def version_create(
    options: Options, context_id: str, message: str, tags: tuple[str, ...], branch: str
) -> None:
    """Record the context as it is now."""
    made = options.run(
        lambda cm: cm.create_version(context_id, options.user_id, message, tags, branch=branch)
    )
    options.show([made], _render.show_history)


@version.command(name="show")
@common_options
@click.argument("context_id")
@click.argument("version_id")
@click.option("--full", is_flag=True, help="show long messages whole (default: cut)")
def version_show(options: Options, context_id: str, version_id: str, full: bool) -> None:
    """The context as it was at a version."""
    context = options.run(lambda cm: cm.get_version(context_id, version_id, options.user_id))
    options.show(context, functools.partial(_render.show_context, full=full))


@cli.command()
@common_options
@click.argument("context_id")
@click.argument("version_id")
@click.option("--branch", default="main", show_default=True, help="the branch to roll back")
def rollback(options: Options, context_id: str, version_id: str, branch: str) -> None:
    """Bring a branch back to a version (a new revision; history is kept)."""
    context = options.run(
        lambda cm: cm.rollback_to_version(context_id, version_id, options.user_id, branch=branch)
    )
    options.show(context, _render.show_context)


@cli.command()
@common_options
@click.argument("context_id")
@click.argument("from_version")
@click.argument("to_version")
def diff(options: Options, context_id: str, from_version: str, to_version: str) -> None:
    """What changed between two versions: a JSON Patch and the messages."""
    found = options.run(
        lambda cm: cm.diff_versions(context_id, from_version, to_version, options.user_id)
    )
    options.show(found, _render.show_diff)


@cli.group()
def branch() -> None:
    """Create, list and merge branches."""


@branch.command(name="create")
@common_options
@click.argument("context_id")
@click.argument("name")
@click.option("--from", "from_version", default=None, help="version to fork (default: main now)")
def branch_create(options: Options, context_id: str, name: str, from_version: str | None) -> None:
    """A new branch (nothing is copied)."""
    made = options.run(lambda cm: cm.create_branch(context_id, name, from_version, options.user_id))
    options.show([made], _render.show_branches)


@branch.command(name="list")
@common_options
@click.argument("context_id")
def branch_list(options: Options, context_id: str) -> None:
    """Every branch of a context, main first."""
    options.show(
        options.run(lambda cm: cm.list_branches(context_id, options.user_id)),
        _render.show_branches,
    )


@branch.command(name="merge")
@common_options
@click.argument("context_id")
@click.argument("source")
@click.option("--into", "target", default="main", show_default=True)
@click.option(
    "--strategy",
    type=click.Choice(["fail", "source", "target"]),
    default="fail",
    show_default=True,
    help="who wins where both changed a path",
)
def branch_merge(
    options: Options, context_id: str, source: str, target: str, strategy: str
) -> None:
    """Merge a branch into another; exit code 1 when conflicts stop it."""

    async def work(cm: ContextManager) -> MergeResult:
        return await cm.merge_branch(
            context_id, source, target, options.user_id, cast(MergeStrategy, strategy)
        )

    result = options.run(work)
    options.show(result, _render.show_merge)
    if not result.merged:
        raise click.exceptions.Exit(1)
