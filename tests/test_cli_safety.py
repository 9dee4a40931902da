"""The CLI never harms a database it only reads, and says in one line what is wrong.

Reads never create or migrate; read-only databases read; bad settings, an unreachable
server and Ctrl-C end a command with one line; `stats` counts right; the demo is made once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import click
import orjson
import pytest

from loremaster import (
    ConfigurationError,
    ContextManager,
    ConversationContext,
    DatabaseNotFound,
    ReadOnlyDatabase,
)
from loremaster.cli import cli, main
from loremaster.cli._session import READ_COMMANDS
from loremaster.storage._schema import available_migrations
from test_migrations import OLD_CONTEXT, _bring_to_version

LOREMASTER = [sys.executable, "-c", "from loremaster.cli import run; run()"]
VERSIONS = [m.version for m in available_migrations("sqlite")]
LATEST, PREVIOUS = VERSIONS[-1], VERSIONS[-2]
MISSING = "6f9619ff-8b86-d011-b42d-00c04fc964ff"

WRITE_COMMANDS = {
    "append",
    "branch create",
    "branch merge",
    "cleanup",
    "codec train-dictionary",
    "create",
    "db migrate",
    "delete",
    "demo",
    "import",
    "lock",
    "migrate",
    "resolve",
    "restore",
    "rollback",
    "unlock",
    "update",
    "version create",
}
"""Every other command with --database-url: they create and migrate as needed."""

# Each read command, with the arguments it needs (CID: a context id).
READS = [
    ("list",),
    ("show", "CID"),
    ("search", "dragon"),
    ("events", "CID"),
    ("history", "CID"),
    ("diff", "CID", MISSING, MISSING),
    ("version", "show", "CID", MISSING),
    ("branch", "list", "CID"),
    ("stats",),
    ("health",),
    ("db", "status"),
    ("export",),
    ("export", "--full"),
    ("export-for", "CID", "--to", "openai"),
    ("tokens", "CID"),
    ("conflicts", "CID"),
    ("watch", "CID", "--count", "1"),
]


def _cli(*args: str, capsys: pytest.CaptureFixture[str], code: int = 0) -> tuple[str, str]:
    exit_code = main(list(args))
    out, err = capsys.readouterr()
    assert exit_code == code, (out, err)
    return out, err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    return lines[0]


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_command_that_opens_a_database_is_a_read_or_a_write() -> None:
    opening = {
        name
        for name, command in _commands(cli)
        if any(param.name == "database_url" for param in command.params)
    }
    assert opening >= READ_COMMANDS, READ_COMMANDS - opening
    assert opening - READ_COMMANDS == WRITE_COMMANDS
    assert {_command_of(args) for args in READS} == READ_COMMANDS


def _command_of(args: tuple[str, ...]) -> str:
    two = " ".join(args[:2])
    return two if two in READ_COMMANDS else args[0]


# -- reads never create, never migrate ---------------------------------------------------


@pytest.mark.parametrize("args", READS, ids=lambda args: " ".join(args[:2]))
def test_a_read_of_a_missing_sqlite_file_creates_nothing(
    args: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "no" / "such" / "dir"
    url = f"sqlite:///{folder / 'x.db'}"
    argv = [MISSING if a == "CID" else a for a in args]
    _, err = _cli(*argv, "--database-url", url, capsys=capsys, code=1)
    line = _one_error_line(err)
    assert "does not exist" in line
    assert "loremaster db migrate" in line
    assert not (tmp_path / "no").exists()


def test_a_write_creates_the_file_and_its_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'x.db'}"
    out, _ = _cli("create", "--title", "first", "--database-url", url, capsys=capsys)
    assert (tmp_path / "new" / "x.db").is_file()
    listed, _ = _cli("list", "--json", "--database-url", url, capsys=capsys)
    assert [c["context_id"] for c in orjson.loads(listed)["items"]] == [out.strip()]


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return [row["tablename"] for row in rows]


@pytest.mark.parametrize("command", ["list", "health", "stats", "search"])
def test_a_read_of_an_empty_postgres_database_adds_no_tables(
    command: str, empty_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = (command, "x") if command == "search" else (command,)
    _, err = _cli(*args, "--database-url", empty_postgres_url, capsys=capsys, code=1)
    line = _one_error_line(err)
    assert "holds no loremaster schema: run `loremaster db migrate` first" in line
    assert asyncio.run(_tables(empty_postgres_url)) == []
    out, _ = _cli("db", "status", "--json", "--database-url", empty_postgres_url, capsys=capsys)
    assert orjson.loads(out)["version"] == 0
    assert asyncio.run(_tables(empty_postgres_url)) == []


def _schema_version(url: str) -> int:
    async def status() -> int:
        cm = ContextManager(database_url=url)
        await cm.initialize(migrate=False, create=False)
        try:
            return (await cm.migration_status()).version
        finally:
            await cm.close()

    return asyncio.run(status())


def test_a_read_of_a_schema_behind_the_code_migrates_nothing(
    empty_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_bring_to_version(empty_db_url, PREVIOUS))
    for args in (("list",), ("show", OLD_CONTEXT), ("health",), ("stats",), ("export",)):
        _, err = _cli(*args, "--database-url", empty_db_url, capsys=capsys, code=1)
        line = _one_error_line(err)
        assert f"is at version {PREVIOUS}, 1 migration(s) behind" in line, line
        assert "run `loremaster db migrate` first" in line
    assert _schema_version(empty_db_url) == PREVIOUS
    out, _ = _cli("db", "status", "--json", "--database-url", empty_db_url, capsys=capsys)
    assert [p["version"] for p in orjson.loads(out)["pending"]] == [LATEST]

    _cli("db", "migrate", "--database-url", empty_db_url, capsys=capsys)
    shown, _ = _cli("show", OLD_CONTEXT, "--json", "--database-url", empty_db_url, capsys=capsys)
    assert orjson.loads(shown)["title"] == "from the old schema"


def test_a_write_still_migrates(empty_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_bring_to_version(empty_db_url, PREVIOUS))
    argv = ["append", OLD_CONTEXT, "--role", "user", "--content", "hi"]
    _cli(*argv, "--database-url", empty_db_url, capsys=capsys)
    assert _schema_version(empty_db_url) == LATEST


async def test_the_library_can_open_without_creating(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.db"
    cm = ContextManager(database_url=f"sqlite:///{path}")
    with pytest.raises(DatabaseNotFound, match="does not exist"):
        await cm.initialize(migrate=False, create=False)
    assert not (tmp_path / "sub").exists()
    async with ContextManager(database_url=f"sqlite:///{path}") as made:  # the default creates
        assert (await made.migration_status()).version == LATEST


async def test_a_missing_postgres_database_is_database_not_found(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/lm_no_such_database"
    with pytest.raises(DatabaseNotFound, match="does not exist"):
        async with ContextManager(database_url=url, sync_timeout=2):
            pass


# -- read-only SQLite --------------------------------------------------------------------


@pytest.fixture
def campaign_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """A database with the demo campaign; the conversation's id."""
    path = tmp_path / "campaign.db"
    out, _ = _cli("demo", "--json", "--database-url", f"sqlite:///{path}", capsys=capsys)
    return path, orjson.loads(out)["conversation"]["context_id"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("option", ["mode=ro", "immutable=1"])
def test_a_read_only_url_reads_and_refuses_writes(
    option: str, campaign_db: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, context_id = campaign_db
    before = _digest(path)
    url = f"sqlite:///{path}?{option}"
    shown, _ = _cli("show", context_id, "--json", "--database-url", url, capsys=capsys)
    assert orjson.loads(shown)["message_count"] == 7
    _cli("export", "-o", str(tmp_path / "all.json"), "--database-url", url, capsys=capsys)
    assert len(orjson.loads((tmp_path / "all.json").read_bytes())["contexts"]) == 3
    _cli("search", "dragon", "--database-url", url, capsys=capsys)
    health, _ = _cli("health", "--json", "--database-url", url, capsys=capsys)
    report = orjson.loads(health)
    assert report["status"] == "ok"
    assert report["storage"]["read_only"] is True
    out, _ = _cli("health", "--database-url", url, capsys=capsys)
    assert "read-only: reads work, writes are refused" in out

    started = time.monotonic()
    for write in (
        ("append", context_id, "--role", "user", "--content", "x"),
        ("create", "--title", "nope"),
        ("delete", context_id),
    ):
        _, err = _cli(*write, "--database-url", url, capsys=capsys, code=1)
        assert "is read-only" in _one_error_line(err)
        assert "writes are refused" in err
    assert time.monotonic() - started < 10  # no retrying: each fails at once
    assert _digest(path) == before  # not even last_accessed was written


async def test_reads_on_a_read_only_database_skip_the_access_time(
    campaign_db: tuple[Path, str],
) -> None:
    path, context_id = campaign_db
    with sqlite3.connect(path) as db:
        db.execute("UPDATE contexts SET last_accessed = 0")
    async with ContextManager(database_url=f"sqlite:///{path}?mode=ro") as cm:
        assert cm.storage.read_only
        assert (await cm.get_context(context_id)).message_count == 7  # type: ignore[attr-defined]
        with pytest.raises(ReadOnlyDatabase, match="read-only"):
            await cm.create_context(ConversationContext(title="nope"))
        assert (await cm.health_check())["storage"]["read_only"] is True
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT max(last_accessed) FROM contexts").fetchone() == (0,)


async def test_a_read_only_url_never_creates(tmp_path: Path) -> None:
    with pytest.raises(DatabaseNotFound):
        async with ContextManager(database_url=f"sqlite:///{tmp_path / 'x.db'}?mode=ro"):
            pass
    assert list(tmp_path.iterdir()) == []


async def _read_only_database(url: str) -> str:
    """A context in `url`, then the database made read-only for every new session."""
    async with ContextManager(database_url=url) as cm:
        context_id = await cm.create_context(ConversationContext(title="archived"))
    conn = await asyncpg.connect(url, timeout=5)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    finally:
        await conn.close()
    return context_id


def test_a_read_only_postgres_reads_and_refuses_writes(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    context_id = asyncio.run(_read_only_database(postgres_url))
    shown, _ = _cli("show", context_id, "--json", "--database-url", postgres_url, capsys=capsys)
    assert orjson.loads(shown)["title"] == "archived"
    health, _ = _cli("health", "--json", "--database-url", postgres_url, capsys=capsys)
    assert orjson.loads(health)["storage"]["read_only"] is True
    started = time.monotonic()
    _, err = _cli("create", "--title", "x", "--database-url", postgres_url, capsys=capsys, code=1)
    assert "PostgreSQL is read-only" in _one_error_line(err)
    assert time.monotonic() - started < 10  # refused, not retried for CONTEXT_SYNC_TIMEOUT


def _as_unprivileged() -> list[str]:
    """A prefix that runs a command without root's power to ignore file permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]


def test_a_read_only_file_in_a_read_only_folder_reads(
    campaign_db: tuple[Path, str], tmp_path: Path
) -> None:
    path, context_id = campaign_db
    prefix = _as_unprivileged()
    folder = tmp_path / "locked"
    folder.mkdir()
    shutil.copy(path, folder / "x.db")  # WAL mode, no -wal or -shm file beside it
    url = f"sqlite:///{folder / 'x.db'}"
    (folder / "x.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        probe = subprocess.run(
            [*prefix, "touch", str(folder / "probe")], capture_output=True, check=False
        )
        if probe.returncode == 0:
            pytest.skip("this process may write a 0555 folder: permissions cannot be tested")

        def loremaster(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*prefix, *LOREMASTER, *args, "--database-url", url],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
                env={k: v for k, v in os.environ.items() if not k.startswith("CONTEXT_")},
            )

        shown = loremaster("show", context_id, "--json")
        assert shown.returncode == 0, shown.stderr
        assert orjson.loads(shown.stdout)["message_count"] == 7
        health = loremaster("health", "--json")
        storage = orjson.loads(health.stdout)["storage"]
        assert (storage["read_only"], storage["immutable"]) == (True, True)
        refused = loremaster("append", context_id, "--role", "user", "--content", "x")
        assert refused.returncode == 1
        assert "is read-only" in _one_error_line(refused.stderr)
        assert sorted(p.name for p in folder.iterdir()) == ["x.db"]
    finally:
        folder.chmod(0o755)


# -- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("CONTEXT_REDIS_URL", "not-a-url", "not a Redis URL"),
        ("CONTEXT_REDIS_URL", "redis://localhost:port/0", "'port', not a number"),
        ("CONTEXT_REDIS_URL", "redis://localhost/zero", "the Redis database is 'zero'"),
        ("CONTEXT_DATABASE_URL", "postgresql://dm:s3cret@db.example:54x2/x", "'54x2'"),
        ("CONTEXT_DATABASE_URL", "postgresql://dm:s3cret@a:1,b:99999/x", "'99999'"),
        ("CONTEXT_DATABASE_URL", "sqlite:///x.db?mode=readonly", "mode 'readonly'"),
        ("CONTEXT_DATABASE_URL", "sqlite:///x.db?cache=shared", "option 'cache'"),
        ("CONTEXT_DATABASE_URL", "sqlite://host/x.db", "not a SQLite URL"),
        ("CONTEXT_SYNC_TIMEOUT", "soon", "sync_timeout"),
        ("CONTEXT_POOL_SIZE", "0", "pool_size"),
    ],
)
def test_a_bad_setting_is_one_line(
    case: tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    variable, value, says = case
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    _, err = _cli("list", capsys=capsys, code=1)
    line = _one_error_line(err)
    assert says in line
    assert "invalid settings" in line
    assert "s3cret" not in line
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigurationError) as raised:
        ContextManager()
    assert "s3cret" not in str(raised.value)
    assert "s3cret" not in str(raised.value.__cause__)


def test_an_empty_redis_url_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXT_REDIS_URL", "")
    assert ContextManager(database_url="sqlite:///x.db").settings.redis_url is None


# -- an unreachable PostgreSQL, and Ctrl-C ------------------------------------------------


def test_an_unreachable_postgres_says_so_at_once_and_ctrl_c_ends_it() -> None:
    started = time.monotonic()
    process = subprocess.Popen(
        [*LOREMASTER, "list", "--database-url", "postgresql://dm:s3cret@127.0.0.1:1/campaign"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONTEXT_")},
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        said_after = time.monotonic() - started
        assert "PostgreSQL at 127.0.0.1:1/campaign is not answering" in first, first
        assert "retrying for up to 30 s" in first
        assert "s3cret" not in first
        assert said_after < 5  # about 0.5 s, mostly Python starting; generous when busy
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, rest = process.communicate(timeout=10)
        ended_after = time.monotonic() - interrupted
    finally:
        process.kill()
    assert process.returncode == 130, rest
    assert rest == "Interrupted.\n"
    assert out == ""
    assert ended_after < 2


def test_an_unreachable_postgres_fails_after_the_sync_timeout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXT_SYNC_TIMEOUT", "1")
    started = time.monotonic()
    url = "postgresql://dm:s3cret@127.0.0.1:1/x"
    _, err = _cli("list", "--database-url", url, capsys=capsys, code=1)
    assert time.monotonic() - started < 10
    notice, error = err.splitlines()
    assert notice.startswith("loremaster: PostgreSQL at 127.0.0.1:1/x is not answering")
    assert error.startswith("Error: PostgreSQL at 127.0.0.1:1/x unavailable for 1 s")
    assert "s3cret" not in err


# -- stats -------------------------------------------------------------------------------


def test_stats_on_sqlite_counts_messages_one_way(
    campaign_db: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = campaign_db
    out, _ = _cli("stats", "--json", "--database-url", f"sqlite:///{path}", capsys=capsys)
    stats = orjson.loads(out)
    # The demo's branch has a message of its own: main's views hold 7, the table 8.
    assert stats["storage"]["messages"] == stats["health"]["storage"]["messages"] == 7
    assert stats["storage"]["contexts"] == stats["health"]["storage"]["contexts"] == 3


async def _create(url: str, count: int) -> None:
    async with ContextManager(database_url=url) as cm:
        for n in range(count):
            await cm.create_context(ConversationContext(title=f"t{n}"))


def test_stats_on_postgres_counts_what_is_there(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_create(postgres_url, 3))
    out, _ = _cli("stats", "--json", "--database-url", postgres_url, capsys=capsys)
    storage = orjson.loads(out)["storage"]
    assert storage["contexts"] == 3
    assert storage["refreshed_at"] is not None


async def test_postgres_statistics_use_the_view_while_it_is_fresh(postgres_url: str) -> None:
    await _create(postgres_url, 1)
    async with ContextManager(database_url=postgres_url) as first:
        assert (await first.refresh_statistics())["contexts"] == 1
        await _create(postgres_url, 1)
        viewed = (await first.get_performance_stats())["storage"]
        assert viewed["contexts"] == 1  # the view, refreshed moments ago
        assert (await first.get_performance_stats(max_age=0))["storage"]["contexts"] == 2
    async with ContextManager(database_url=postgres_url) as other:  # never refreshed it
        assert (await other.get_performance_stats())["storage"]["contexts"] == 2


# -- the demo ----------------------------------------------------------------------------


def test_the_demo_twice_makes_one_campaign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = orjson.loads(_cli("demo", "--json", "--database-url", url, capsys=capsys)[0])
    second = orjson.loads(_cli("demo", "--json", "--database-url", url, capsys=capsys)[0])
    assert (first["created"], second["created"]) == (True, False)
    for part in ("conversation", "session", "room"):
        assert first[part]["context_id"] == second[part]["context_id"]
    assert second["conversation"]["message_count"] == 7
    out, _ = _cli("demo", "--database-url", url, capsys=capsys)
    assert "Already here" in out
    listed = orjson.loads(_cli("list", "--json", "--database-url", url, capsys=capsys)[0])
    assert len(listed["items"]) == 3


def test_the_demo_seeds_beside_other_contexts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    _cli("create", "--title", "my own campaign", "--database-url", url, capsys=capsys)
    _cli("demo", "--database-url", url, capsys=capsys)
    _cli("demo", "--database-url", url, capsys=capsys)
    listed = orjson.loads(_cli("list", "--json", "--database-url", url, capsys=capsys)[0])
    assert len(listed["items"]) == 4


@pytest.mark.parametrize("full", [False, True], ids=["export", "export-full"])
def test_ctrl_c_during_an_import_says_what_landed_and_how_to_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], full: bool
) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"

    async def fill() -> None:
        async with ContextManager(source) as cm:
            await cm.create_contexts([ConversationContext(title=f"t{n}") for n in range(400)])

    asyncio.run(fill())
    dump = tmp_path / "dump.jsonl"
    _cli(
        "export",
        *(["--full"] if full else []),
        "-o",
        str(dump),
        "--database-url",
        source,
        capsys=capsys,
    )
    target = tmp_path / "target.db"
    command = [
        str(Path(sys.executable).parent / "loremaster"),
        "import",
        str(dump),
        "--database-url",
        f"sqlite:///{target}",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _stored(target) < 20:
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130, err
    [line] = err.strip().splitlines()
    landed = _stored(target)
    assert 0 < landed < 400
    assert line.startswith("Interrupted. ")
    assert "--skip-existing" in line
    _cli(
        "import",
        str(dump),
        "--skip-existing",
        "--database-url",
        f"sqlite:///{target}",
        capsys=capsys,
    )
    assert _stored(target) == 400


def _stored(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            return int(connection.execute("SELECT count(*) FROM contexts").fetchone()[0])
    except sqlite3.Error:
        return 0
