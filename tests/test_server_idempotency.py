"""Idempotency-Key and Lock-Token over real sockets: a retried write is written once and
answered as the first time, whichever server process takes the retry; a write under a
lease that has expired and been taken over is refused in any process."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from _redis import redis_url  # noqa: F401
from _server import ServerProcess, StartServer, local_server, start_server  # noqa: F401
from loremaster.manager import ContextManager, StoredResponse
from loremaster.server._idempotency import fingerprint

CONVERSATION = {"context_type": "conversation", "title": "Session 1"}


@pytest.fixture
def client(local_server: ServerProcess) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=local_server.url, timeout=10) as http:
        yield http


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


def titled(http: httpx.Client, title: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get(
        "/v1/contexts", params={"title_contains": title, "limit": 1000}
    ).json()["items"]
    return items


def message_count(http: httpx.Client, context_id: str) -> int:
    return len(http.get(f"/v1/contexts/{context_id}/messages").json()["items"])


# -- one process ------------------------------------------------------------------------


def test_a_retried_create_is_answered_again_and_written_once(client: httpx.Client) -> None:
    title = f"Once {uuid.uuid4().hex}"
    headers = key()
    first = client.post("/v1/contexts", json={**CONVERSATION, "title": title}, headers=headers)
    again = client.post("/v1/contexts", json={**CONVERSATION, "title": title}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    for name in ("etag", "location", "content-type"):
        assert again.headers[name] == first.headers[name]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(titled(client, title)) == 1


def test_retried_appends_patches_and_versions_write_once(client: httpx.Client) -> None:
    context_id = client.post("/v1/contexts", json=CONVERSATION).json()["context_id"]
    url = f"/v1/contexts/{context_id}"
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{url}/messages", {"messages": [{"role": "user", "content": "Hi"}]}),
        ("PATCH", url, {"data": {"hp": 7}}),
        ("POST", f"{url}/versions", {"message": "checkpoint"}),
    ]
    for method, path, body in writes:
        headers = key()
        first = client.request(method, path, json=body, headers=headers)
        revision = client.get(url).json()["revision"]
        again = client.request(method, path, json=body, headers=headers)
        assert (again.status_code, again.content) == (first.status_code, first.content)
        assert client.get(url).json()["revision"] == revision
    assert message_count(client, context_id) == 1
    versions = client.get(f"{url}/versions").json()["items"]
    assert [v["message"] for v in versions].count("checkpoint") == 1


def test_the_same_key_for_another_request_is_refused(client: httpx.Client) -> None:
    title = f"Mismatch {uuid.uuid4().hex}"
    headers = key()
    body = {**CONVERSATION, "title": title}
    assert client.post("/v1/contexts", json=body, headers=headers).status_code == 201
    other = client.post("/v1/contexts", json={**body, "title": title + "!"}, headers=headers)
    assert error_of(other, 422) == "idempotency_mismatch"
    elsewhere = client.post("/v1/contexts?source=openai", json=body, headers=headers)
    assert error_of(elsewhere, 422) == "idempotency_mismatch"
    assert len(titled(client, title)) == 1


def test_a_refused_request_gives_its_key_back(client: httpx.Client) -> None:
    """A 4xx wrote nothing: retried with the same key once the cause is gone, it runs."""
    context_id = client.post("/v1/contexts", json=CONVERSATION).json()["context_id"]
    url = f"/v1/contexts/{context_id}"
    alice = {"X-Loremaster-User": "alice"}
    client.patch(url, json={"collaborators": ["alice", "bob"]})
    assert client.post(f"{url}/lock", headers=alice).status_code == 201
    headers = {**key(), "X-Loremaster-User": "bob"}
    body = {"messages": [{"role": "user", "content": "Let me in"}]}
    assert error_of(client.post(f"{url}/messages", json=body, headers=headers), 423) == (
        "lock_held"
    )
    assert client.delete(f"{url}/lock", headers=alice).status_code == 204
    retried = client.post(f"{url}/messages", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert message_count(client, context_id) == 1


def test_keys_are_per_user(client: httpx.Client) -> None:
    title = f"Per user {uuid.uuid4().hex}"
    shared = key()
    for user in ("alice", "bob"):
        headers = {**shared, "X-Loremaster-User": user}
        created = client.post(
            "/v1/contexts", json={**CONVERSATION, "title": title}, headers=headers
        )
        assert created.status_code == 201
        assert "idempotent-replayed" not in created.headers
    assert len(titled(client, title)) == 2


@pytest.mark.parametrize("bad", [b"x" * 256, "caf\u00e9".encode(), b"", b"tab\there"])
def test_a_malformed_key_is_refused(client: httpx.Client, bad: bytes) -> None:
    title = f"Bad key {uuid.uuid4().hex}"
    response = client.post(
        "/v1/contexts",
        json={**CONVERSATION, "title": title},
        headers={"Idempotency-Key": bad},
    )
    assert error_of(response, 400) == "bad_idempotency_key"
    assert titled(client, title) == []


def test_reads_and_deletes_ignore_the_key(client: httpx.Client) -> None:
    context_id = client.post("/v1/contexts", json=CONVERSATION).json()["context_id"]
    headers = key()
    assert client.get(f"/v1/contexts/{context_id}", headers=headers).status_code == 200
    assert client.delete(f"/v1/contexts/{context_id}", headers=headers).status_code == 204
    assert client.delete(f"/v1/contexts/{context_id}", headers=headers).status_code == 404


def test_the_key_is_documented_on_every_post_and_patch(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            assert ("Idempotency-Key" in names) == (method in {"post", "patch"}), (method, path)


async def test_a_key_another_process_holds_is_409_until_it_finishes(
    start_server: StartServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A process (here the library itself) claimed the key for this very request and
    has not answered: the server says 409 and writes nothing; once that process has
    finished the key, the server replays its answer."""
    server = start_server()
    body = json.dumps({**CONVERSATION, "title": "Claimed elsewhere"}).encode()
    claimed = fingerprint("POST", b"/v1/contexts", b"", "application/json", body)
    headers = {"Content-Type": "application/json", "Idempotency-Key": "held"}
    async with ContextManager(f"sqlite:///{tmp_path / 'server.db'}") as cm:
        assert await cm.idempotency.claim("local", "held", claimed) is None
        with httpx.Client(base_url=server.url) as http:
            busy = http.post("/v1/contexts", content=body, headers=headers)
            assert error_of(busy, 409) == "idempotency_in_progress"
            assert titled(http, "Claimed elsewhere") == []
            answer = StoredResponse(201, b'{"done": true}', {"content-type": "application/json"})
            await cm.idempotency.finish("local", "held", answer)
            replayed = http.post("/v1/contexts", content=body, headers=headers)
            assert (replayed.status_code, replayed.json()) == (201, {"done": True})
            assert titled(http, "Claimed elsewhere") == []


# -- Lock-Token, one process ------------------------------------------------------------


def test_writes_under_a_lock_carry_its_token(client: httpx.Client) -> None:
    alice = {"X-Loremaster-User": "alice"}
    created = client.post("/v1/contexts", json=CONVERSATION, headers=alice)
    url = f"/v1/contexts/{created.json()['context_id']}"
    token = client.post(f"{url}/lock", json={"timeout": 30}, headers=alice).json()["token"]
    fenced = {**alice, "Lock-Token": str(token)}
    assert client.patch(url, json={"data": {"hp": 1}}, headers=fenced).status_code == 200
    said = client.post(
        f"{url}/messages", json={"messages": [{"role": "user", "content": "x"}]}, headers=fenced
    )
    assert said.status_code == 201, said.text
    wrong = {**alice, "Lock-Token": str(token + 1)}
    assert error_of(client.patch(url, json={"data": {"hp": 2}}, headers=wrong), 423) == (
        "lock_lost"
    )
    malformed = {**alice, "Lock-Token": "soon"}
    assert error_of(client.patch(url, json={"data": {"hp": 3}}, headers=malformed), 400) == (
        "bad_lock_token"
    )
    assert client.get(url, headers=alice).json()["data"] == {"hp": 1}


def test_in_local_mode_a_fenced_write_is_the_local_users(client: httpx.Client) -> None:
    created = client.post("/v1/contexts", json={**CONVERSATION, "owner_id": "local"})
    url = f"/v1/contexts/{created.json()['context_id']}"
    lock = client.post(f"{url}/lock").json()
    assert lock["holder"] == "local"
    fenced = {"Lock-Token": str(lock["token"])}
    patched = client.patch(url, json={"data": {"hp": 1}}, headers=fenced)
    assert patched.status_code == 200, patched.text
    events = client.get(f"{url}/events", params={"since_revision": lock["token"]}).json()
    assert events["items"][-1]["user_id"] == "local"
    assert client.delete(f"{url}/lock", headers=fenced).status_code == 204


# -- many processes on one database ------------------------------------------------------


@pytest.fixture
def two_servers(
    start_server: StartServer,  # noqa: F811
    postgres_url: str,
    redis_url: str,  # noqa: F811
) -> tuple[ServerProcess, ServerProcess]:
    env = {"CONTEXT_DATABASE_URL": postgres_url, "CONTEXT_REDIS_URL": redis_url}
    return start_server(env=env), start_server(env=env)


def test_a_retry_through_another_process_is_answered_from_the_first(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    one, two = two_servers
    title = f"Across {uuid.uuid4().hex}"
    headers = key()
    body = {**CONVERSATION, "title": title}
    with httpx.Client(base_url=one.url) as first, httpx.Client(base_url=two.url) as second:
        answered = first.post("/v1/contexts", json=body, headers=headers)
        replayed = second.post("/v1/contexts", json=body, headers=headers)
        assert answered.status_code == replayed.status_code == 201
        assert replayed.content == answered.content
        assert replayed.headers["idempotent-replayed"] == "true"
        assert len(titled(second, title)) == 1


def test_concurrent_identical_requests_write_once(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    one, two = two_servers
    with httpx.Client(base_url=one.url) as http:
        context_id = http.post("/v1/contexts", json=CONVERSATION).json()["context_id"]
    headers = key()
    body = {"messages": [{"role": "user", "content": "Only once"}]}

    def append(server: ServerProcess) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            return http.post(f"/v1/contexts/{context_id}/messages", json=body, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(append, [one, two] * 4))
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, [a.text for a in answers]
    written = [a for a in answers if a.status_code == 201]
    assert len({a.content for a in written}) == 1
    assert sum("idempotent-replayed" not in a.headers for a in written) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"]["code"] == "idempotency_in_progress"
    with httpx.Client(base_url=two.url) as http:
        assert message_count(http, context_id) == 1


def wait_until_past(expires_at: str, http: httpx.Client, url: str, user: dict[str, str]) -> None:
    """Until the lease has lapsed by the database's clock: another user may take it."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        taken = http.post(f"{url}/lock", json={"timeout": 30}, headers=user)
        if taken.status_code == 201:
            return
        assert taken.json()["error"]["code"] == "lock_held", taken.text
        time.sleep(0.1)
    raise AssertionError(f"the lease ending {expires_at} never lapsed")


def test_a_stale_token_is_refused_by_every_process(
    start_server: StartServer,  # noqa: F811
    postgres_url: str,
    redis_url: str,  # noqa: F811
) -> None:
    keys = {"LOREMASTER_API_KEYS": "key-a=alice,key-b=bob"}
    env = {"CONTEXT_DATABASE_URL": postgres_url, "CONTEXT_REDIS_URL": redis_url, **keys}
    one, two = start_server(env=env), start_server(env=env)
    alice = {"Authorization": "Bearer key-a"}
    bob = {"Authorization": "Bearer key-b"}
    with httpx.Client(base_url=one.url) as first, httpx.Client(base_url=two.url) as second:
        created = first.post(
            "/v1/contexts", json={**CONVERSATION, "collaborators": ["bob"]}, headers=alice
        )
        url = f"/v1/contexts/{created.json()['context_id']}"
        lock = first.post(f"{url}/lock", json={"timeout": 1}, headers=alice).json()
        fenced = {**alice, "Lock-Token": str(lock["token"])}
        written = second.patch(url, json={"data": {"by": "alice"}}, headers=fenced)
        assert written.status_code == 200, written.text

        wait_until_past(lock["expires_at"], second, url, bob)
        revision = second.get(url, headers=bob).json()["revision"]
        late = second.patch(url, json={"data": {"by": "alice, late"}}, headers=fenced)
        assert error_of(late, 423) == "lock_lost"
        said = second.post(
            f"{url}/messages",
            json={"messages": [{"role": "user", "content": "late"}]},
            headers=fenced,
        )
        assert error_of(said, 423) == "lock_lost"
        for http in (first, second):
            after = http.get(url, headers=bob).json()
            assert (after["revision"], after["data"]) == (revision, {"by": "alice"})
