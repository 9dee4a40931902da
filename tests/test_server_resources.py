"""The REST resources of a context over real sockets — messages, events, versions,
branches, locks, rooms, presence, conflicts, translation — and validation: each route,
each error it gives, and access control across them (a stranger sees 404 everywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _server import ServerProcess

KEYS = "k-gm=gm,k-p1=p1,k-p2=p2,k-reader=reader,k-stranger=stranger"
LIMIT_MB = 0.25


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with API keys for five users, and a small body limit."""
    workdir: Path = tmp_path_factory.mktemp("resources")
    env = {"LOREMASTER_API_KEYS": KEYS, "CONTEXT_MAX_SIZE_MB": str(LIMIT_MB)}
    process = ServerProcess(workdir, env).start()
    yield process
    process.stop()


def client_for(server: ServerProcess, user: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer k-{user}"}, timeout=10
    )


@pytest.fixture
def gm(server: ServerProcess) -> Iterator[httpx.Client]:
    with client_for(server, "gm") as http:
        yield http


@pytest.fixture
def p1(server: ServerProcess) -> Iterator[httpx.Client]:
    with client_for(server, "p1") as http:
        yield http


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    code: str = body["error"]["code"]
    return code


def create(http: httpx.Client, **fields: Any) -> str:
    body = {"context_type": "conversation", "title": "The crypt", **fields}
    response = http.post("/v1/contexts", json=body)
    assert response.status_code == 201, response.text
    context_id: str = response.json()["context_id"]
    return context_id


def say(http: httpx.Client, context_id: str, *texts: str, **params: str) -> httpx.Response:
    messages = [{"role": "user", "content": text} for text in texts]
    return http.post(
        f"/v1/contexts/{context_id}/messages", json={"messages": messages}, params=params
    )


def texts_of(messages: list[dict[str, Any]]) -> list[str]:
    return [part["text"] for message in messages for part in message["parts"]]


# -- messages and events ----------------------------------------------------------------


def test_messages_in_every_shape_append_as_one_revision(gm: httpx.Client) -> None:
    context_id = create(gm)
    anthropic = {"role": "assistant", "content": [{"type": "text", "text": "A door creaks."}]}
    openai = {"role": "user", "content": "I open it."}
    response = gm.post(
        f"/v1/contexts/{context_id}/messages",
        json={"messages": [{"role": "user", "content": "Hello"}, anthropic, openai]},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"context_id": context_id, "branch": "main", "revision": 2}
    assert response.headers["etag"] == '"2"'
    assert response.headers["location"] == f"/v1/contexts/{context_id}/messages?branch=main"
    gemini = {"role": "model", "parts": [{"text": "It is dark."}]}
    named = gm.post(
        f"/v1/contexts/{context_id}/messages",
        params={"source": "gemini"},
        json={"messages": [gemini]},
    )
    assert named.status_code == 201, named.text
    listed = gm.get(f"/v1/contexts/{context_id}/messages").json()
    assert texts_of(listed["items"]) == ["Hello", "A door creaks.", "I open it.", "It is dark."]
    assert [m["role"] for m in listed["items"]] == ["user", "assistant", "user", "assistant"]


def test_messages_page_back_with_before_seq(gm: httpx.Client) -> None:
    context_id = create(gm)
    assert say(gm, context_id, *[f"line {n}" for n in range(1, 8)]).status_code == 201
    seen: list[str] = []
    params: dict[str, int] = {"limit": 3}
    while True:
        page = gm.get(f"/v1/contexts/{context_id}/messages", params=params).json()
        seen = texts_of(page["items"]) + seen
        if page["next_before_seq"] is None:
            break
        params["before_seq"] = page["next_before_seq"]
    assert seen == [f"line {n}" for n in range(1, 8)]


def test_events_page_forward_and_filter_by_branch(gm: httpx.Client) -> None:
    context_id = create(gm)
    for n in range(4):
        say(gm, context_id, f"event {n}")
    gm.post(f"/v1/contexts/{context_id}/branches", json={"name": "side"})
    say(gm, context_id, "on the side", branch="side")
    revisions: list[int] = []
    since = 0
    while True:
        page = gm.get(
            f"/v1/contexts/{context_id}/events", params={"since_revision": since, "limit": 2}
        ).json()
        revisions += [event["revision"] for event in page["items"]]
        if page["next_since_revision"] is None:
            break
        since = page["next_since_revision"]
    assert revisions == sorted(revisions)
    assert revisions[0] == 1
    assert len(revisions) == len(set(revisions)) >= 7
    side = gm.get(f"/v1/contexts/{context_id}/events", params={"branch": "side"}).json()
    assert {event["branch"] for event in side["items"]} == {"side"}
    assert side["items"][-1]["op"] == "append_messages"


@pytest.mark.parametrize(
    ("body", "kwargs", "status", "code"),
    [
        ({"messages": []}, {}, 422, "validation_failed"),
        ({"messages": "hello"}, {}, 422, "validation_failed"),
        (
            {"messages": [{"role": "user", "content": "x"}], "extra": 1},
            {},
            422,
            "validation_failed",
        ),
        ({"messages": [{"role": "wizard", "content": "x"}]}, {}, 422, "validation_failed"),
        ({"messages": [{"role": "user", "content": "x"}]}, {"source": "myspace"}, 422, None),
        ({"messages": [{"role": "user", "content": "x"}]}, {"branch": "nowhere"}, 404, None),
        ([1, 2], {}, 422, "validation_failed"),
    ],
)
def test_bad_appends_are_refused_and_change_nothing(
    gm: httpx.Client, body: Any, kwargs: dict[str, str], status: int, code: str | None
) -> None:
    context_id = create(gm)
    url = f"/v1/contexts/{context_id}/messages"
    response = gm.post(url, json=body, params=kwargs)
    found = error_of(response, status)
    assert code is None or found == code
    assert gm.get(url).json()["items"] == []
    assert gm.get(f"/v1/contexts/{context_id}").json()["revision"] == 1


def test_bodies_that_are_not_json_objects_of_the_right_type(gm: httpx.Client) -> None:
    context_id = create(gm)
    url = f"/v1/contexts/{context_id}/messages"
    malformed = gm.post(
        url, content=b'{"messages": [', headers={"Content-Type": "application/json"}
    )
    assert error_of(malformed, 400) == "malformed_json"
    deep = b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    nested = gm.post(url, content=deep, headers={"Content-Type": "application/json"})
    assert error_of(nested, 400) == "malformed_json"
    text = gm.post(url, content=b"hello", headers={"Content-Type": "text/plain"})
    assert error_of(text, 415) == "unsupported_media_type"
    big = {"messages": [{"role": "user", "content": "x" * int(LIMIT_MB * 1_100_000)}]}
    assert error_of(gm.post(url, json=big), 413) == "payload_too_large"
    assert gm.get(url).json()["items"] == []


def test_a_body_over_the_limit_with_an_idempotency_key(gm: httpx.Client) -> None:
    """Refused while it is read (the key is not claimed): the same key then runs."""
    context_id = create(gm)
    url = f"/v1/contexts/{context_id}/messages"
    big = {"messages": [{"role": "user", "content": "x" * int(LIMIT_MB * 1_100_000)}]}
    content = httpx.Request("POST", url, json=big).content
    headers = {"Content-Type": "application/json", "Idempotency-Key": "big-once"}

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 16384):
            yield content[start : start + 16384]

    refused = gm.post(url, content=chunks(), headers=headers)
    assert error_of(refused, 413) == "payload_too_large"
    small = gm.post(url, json={"messages": [{"role": "user", "content": "x"}]}, headers=headers)
    assert small.status_code == 201, small.text
    assert len(gm.get(url).json()["items"]) == 1


def test_appending_to_a_context_that_is_not_a_conversation(gm: httpx.Client) -> None:
    context_id = create(gm, context_type="generic")
    assert error_of(say(gm, context_id, "hello"), 422) == "validation_failed"


# -- versions -----------------------------------------------------------------------------


def test_versions_create_list_get_diff_and_roll_back(gm: httpx.Client) -> None:
    context_id = create(gm, data={"hp": 10})
    base = f"/v1/contexts/{context_id}"
    first = gm.post(f"{base}/versions", json={"message": "before the fight", "tags": ["safe"]})
    assert first.status_code == 201, first.text
    version = first.json()
    assert version["tags"] == ["safe"]
    assert version["author"] == "gm"
    assert first.headers["location"] == f"{base}/versions/{version['version_id']}"
    gm.patch(base, json={"data": {"hp": 3}})
    say(gm, context_id, "Ouch.")
    second = gm.post(f"{base}/versions").json()  # the body may be left out

    at_first = gm.get(first.headers["location"])
    assert at_first.status_code == 200
    assert at_first.json()["data"] == {"hp": 10}
    assert at_first.json()["messages"] == []

    diff = gm.get(f"{base}/diff", params={"a": version["version_id"], "b": second["version_id"]})
    assert diff.status_code == 200, diff.text
    assert {"op": "replace", "path": "/data/hp", "value": 3} in diff.json()["patch"]
    assert texts_of(diff.json()["messages_added"]) == ["Ouch."]

    tagged = gm.get(f"{base}/versions", params={"tag": "safe"}).json()
    assert [v["version_id"] for v in tagged["items"]] == [version["version_id"]]
    numbers: list[int] = []
    params: dict[str, int] = {"limit": 2}
    while True:
        page = gm.get(f"{base}/versions", params=params).json()
        numbers += [v["number"] for v in page["items"]]
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]
    assert numbers == sorted(numbers, reverse=True)
    assert version["number"] in numbers
    assert second["number"] in numbers

    rolled = gm.post(f"{base}/rollback", json={"version_id": version["version_id"]})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["data"] == {"hp": 10}
    assert rolled.headers["etag"] == f'"{rolled.json()["revision"]}"'
    assert gm.get(f"{base}/messages").json()["items"] == []


def test_version_errors(gm: httpx.Client) -> None:
    context_id = create(gm)
    base = f"/v1/contexts/{context_id}"
    unknown = "00000000-0000-4000-8000-000000000000"
    assert error_of(gm.get(f"{base}/versions/{unknown}"), 404) == "version_not_found"
    assert error_of(gm.get(f"{base}/diff", params={"a": unknown}), 422) == "validation_failed"
    assert (
        error_of(gm.post(f"{base}/rollback", json={"version_id": unknown}), 404)
        == "version_not_found"
    )
    assert error_of(gm.post(f"{base}/rollback", json={}), 422) == "validation_failed"
    assert error_of(gm.post(f"{base}/versions", json={"tags": "x"}), 422) == "validation_failed"
    assert error_of(gm.get(f"{base}/versions", params={"limit": 0}), 422) == "validation_failed"
    assert gm.get(f"{base}").json()["revision"] == 1


# -- branches -----------------------------------------------------------------------------


def test_branches_create_list_and_merge(gm: httpx.Client) -> None:
    context_id = create(gm, data={"hp": 10, "xp": 0})
    base = f"/v1/contexts/{context_id}"
    made = gm.post(f"{base}/branches", json={"name": "what/if"})
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "what/if"
    assert made.headers["location"] == f"{base}?branch=what%2Fif"
    assert gm.get(made.headers["location"]).status_code == 200
    gm.patch(base, params={"branch": "what/if"}, json={"data": {"xp": 50}})
    say(gm, context_id, "A side quest.", branch="what/if")
    assert [b["name"] for b in gm.get(f"{base}/branches").json()] == ["main", "what/if"]

    merged = gm.post(f"{base}/branches/what/if/merge", json={"target": "main"})
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged"] is True
    assert merged.json()["messages_added"] == 1
    assert gm.get(base).json()["data"] == {"hp": 10, "xp": 50}


def test_a_conflicting_merge_writes_nothing_unless_a_side_is_chosen(gm: httpx.Client) -> None:
    context_id = create(gm, data={"hp": 10})
    base = f"/v1/contexts/{context_id}"
    gm.post(f"{base}/branches", json={"name": "alt"})
    gm.patch(base, params={"branch": "alt"}, json={"data": {"hp": 1}})
    gm.patch(base, json={"data": {"hp": 20}})
    revision = gm.get(base).json()["revision"]

    refused = gm.post(f"{base}/branches/alt/merge", json={})
    assert error_of(refused, 409) == "merge_conflict"
    assert refused.json()["error"]["details"]["conflicts"][0]["path"] == "/data/hp"
    assert gm.get(base).json()["revision"] == revision

    chosen = gm.post(f"{base}/branches/alt/merge", json={"strategy": "source"})
    assert chosen.status_code == 200, chosen.text
    assert gm.get(base).json()["data"] == {"hp": 1}


def test_branch_errors(gm: httpx.Client) -> None:
    context_id = create(gm)
    base = f"/v1/contexts/{context_id}"
    assert error_of(gm.post(f"{base}/branches", json={"name": "main"}), 422) == "validation_failed"
    assert error_of(gm.post(f"{base}/branches", json={}), 422) == "validation_failed"
    unknown = {"name": "b", "from_version_id": "00000000-0000-4000-8000-000000000000"}
    assert error_of(gm.post(f"{base}/branches", json=unknown), 404) == "version_not_found"
    assert error_of(gm.post(f"{base}/branches/ghost/merge", json={}), 404) == "branch_not_found"
    bad_strategy = gm.post(f"{base}/branches/ghost/merge", json={"strategy": "both"})
    assert error_of(bad_strategy, 422) == "validation_failed"
    assert [b["name"] for b in gm.get(f"{base}/branches").json()] == ["main"]


# -- locks ------------------------------------------------------------------------------


def test_a_lock_keeps_others_out_until_released(gm: httpx.Client, p1: httpx.Client) -> None:
    context_id = create(gm, collaborators=["p1"])
    base = f"/v1/contexts/{context_id}"
    taken = gm.post(f"{base}/lock", json={"timeout": 30})
    assert taken.status_code == 201, taken.text
    lock = taken.json()
    assert lock["holder"] == "gm"
    assert isinstance(lock["token"], int)
    assert lock["expires_at"]
    assert taken.headers["location"] == f"{base}/lock"

    assert error_of(p1.patch(base, json={"title": "mine"}), 423) == "lock_held"
    assert error_of(say(p1, context_id, "me first"), 423) == "lock_held"
    assert error_of(p1.post(f"{base}/lock", json={}), 423) == "lock_held"
    assert error_of(p1.delete(f"{base}/lock"), 423) == "lock_held"

    renewed = gm.post(f"{base}/lock/renew", json={"timeout": 60})
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["token"] == lock["token"]
    assert renewed.json()["expires_at"] > lock["expires_at"]

    assert gm.delete(f"{base}/lock").status_code == 204
    assert p1.patch(base, json={"title": "mine"}).status_code == 200
    assert error_of(gm.post(f"{base}/lock/renew"), 423) == "lock_lost"


def test_lock_errors(gm: httpx.Client, p1: httpx.Client, server: ServerProcess) -> None:
    context_id = create(gm)
    base = f"/v1/contexts/{context_id}"
    for timeout in (0, -1, "soon", 10**9):
        assert error_of(gm.post(f"{base}/lock", json={"timeout": timeout}), 422) == (
            "validation_failed"
        )
    with client_for(server, "reader") as reader:
        gm.patch(base, json={"permissions": {"reader": ["read"]}})
        assert error_of(reader.post(f"{base}/lock"), 403) == "permission_denied"
    assert error_of(p1.post(f"{base}/lock"), 404) == "not_found"


# -- rooms and presence ------------------------------------------------------------------


def test_join_sit_be_present_and_leave(gm: httpx.Client, p1: httpx.Client) -> None:
    room = create(gm, context_type="collaborative", title="The table", max_participants=2)
    base = f"/v1/contexts/{room}"
    joined = p1.post(f"{base}/participants")
    assert joined.status_code == 201, joined.text
    assert joined.headers["location"] == f"{base}/participants/me"
    assert joined.json()["active_participants"] == ["p1"]
    assert joined.headers["etag"] == f'"{joined.json()["revision"]}"'
    listed = p1.get(f"{base}/participants").json()
    assert listed == {"participants": ["p1"], "max_participants": 2}

    present = p1.put(f"{base}/presence/me", json={"viewing": "map", "typing": True})
    assert present.status_code == 200, present.text
    assert present.json()["user_id"] == "p1"
    entries = gm.get(f"{base}/presence").json()
    assert [(e["user_id"], e["viewing"], e["typing"]) for e in entries] == [("p1", "map", True)]

    assert p1.delete(f"{base}/participants/me").status_code == 204
    assert p1.get(f"{base}/participants").json()["participants"] == []
    assert gm.get(f"{base}/presence").json() == []


def test_room_errors(gm: httpx.Client, server: ServerProcess) -> None:
    conversation = create(gm)
    assert error_of(gm.post(f"/v1/contexts/{conversation}/participants"), 422) == (
        "validation_failed"
    )
    assert error_of(gm.get(f"/v1/contexts/{conversation}/participants"), 404) == "not_a_room"
    room = create(gm, context_type="collaborative", title="Full", max_participants=1)
    with client_for(server, "p1") as p1, client_for(server, "p2") as p2:
        assert p1.post(f"/v1/contexts/{room}/participants").status_code == 201
        assert error_of(p2.post(f"/v1/contexts/{room}/participants"), 422) == ("validation_failed")
    bad = gm.put(f"/v1/contexts/{room}/presence/me", json={"typing": "maybe"})
    assert error_of(bad, 422) == "validation_failed"


# -- conflicts ----------------------------------------------------------------------------


def conflicted(http: httpx.Client) -> tuple[str, dict[str, Any]]:
    """A context with one conflict waiting: two writers set /data/hp from revision 1."""
    context_id = create(http, data={"hp": 10})
    url = f"/v1/contexts/{context_id}"
    http.patch(url, json={"data": {"hp": 5}})
    stale = http.patch(
        url,
        params={"strategy": "manual_merge"},
        json={"data": {"hp": 1}},
        headers={"If-Match": '"1"'},
    )
    assert stale.status_code == 200, stale.text
    conflicts = http.get(f"{url}/conflicts").json()
    assert len(conflicts) == 1
    return context_id, conflicts[0]


def test_conflicts_are_listed_and_resolved(gm: httpx.Client) -> None:
    context_id, conflict = conflicted(gm)
    assert conflict["paths"][0]["path"] == "/data/hp"
    url = f"/v1/contexts/{context_id}"
    resolved = gm.post(
        f"{url}/conflicts/{conflict['conflict_id']}/resolve",
        json={"resolution": {"/data/hp": "incoming"}},
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["data"] == {"hp": 1}
    assert gm.get(f"{url}/conflicts").json() == []


def test_conflict_errors(gm: httpx.Client) -> None:
    context_id, conflict = conflicted(gm)
    other = create(gm)
    resolve = f"/conflicts/{conflict['conflict_id']}/resolve"
    choice = {"resolution": {"/data/hp": "incoming"}}
    assert error_of(gm.post(f"/v1/contexts/{other}{resolve}", json=choice), 404) == (
        "conflict_not_found"
    )
    wrong_side = {"resolution": {"/data/hp": "mine"}}
    assert error_of(gm.post(f"/v1/contexts/{context_id}{resolve}", json=wrong_side), 422) == (
        "validation_failed"
    )
    assert error_of(gm.post(f"/v1/contexts/{context_id}{resolve}", json={}), 422) == (
        "validation_failed"
    )
    assert len(gm.get(f"/v1/contexts/{context_id}/conflicts").json()) == 1


# -- translation ------------------------------------------------------------------------


def test_export_for_each_provider_and_migrate(gm: httpx.Client) -> None:
    context_id = create(
        gm,
        messages=[
            {"role": "system", "content": "You are the game master."},
            {"role": "user", "content": "Describe the crypt."},
        ],
    )
    url = f"/v1/contexts/{context_id}"
    anthropic = gm.get(f"{url}/export", params={"provider": "anthropic"}).json()
    assert anthropic["system"] == "You are the game master."
    assert anthropic["messages"] == [{"role": "user", "content": "Describe the crypt."}]
    openai = gm.get(f"{url}/export", params={"provider": "openai", "fit": False}).json()
    assert openai["messages"][0] == {"role": "system", "content": "You are the game master."}
    gemini = gm.get(f"{url}/export", params={"provider": "gemini"}).json()
    assert gemini["contents"][0]["parts"] == [{"text": "Describe the crypt."}]

    migrated = gm.post(f"{url}/migrate", json={"to_provider": "anthropic"})
    assert migrated.status_code == 200, migrated.text
    result = migrated.json()
    assert result["migrated"] is True
    assert result["to_provider"] == "anthropic"
    assert gm.get(url).json()["primary_provider"] == "anthropic"
    assert gm.get(f"{url}/versions", params={"tag": "migration"}).json()["items"]


def test_translation_errors(gm: httpx.Client) -> None:
    context_id = create(gm)
    url = f"/v1/contexts/{context_id}"
    assert error_of(gm.get(f"{url}/export"), 422) == "validation_failed"
    assert error_of(gm.get(f"{url}/export", params={"provider": "myspace"}), 422) == (
        "validation_failed"
    )
    negative = gm.get(f"{url}/export", params={"provider": "openai", "reserve_output": -1})
    assert error_of(negative, 422) == "validation_failed"
    unknown_model = gm.get(f"{url}/export", params={"provider": "openai", "model": "gpt-0"})
    assert unknown_model.status_code in {200, 422}
    bad = gm.post(f"{url}/migrate", json={"to_provider": "anthropic", "options": {"on_loss": 1}})
    assert error_of(bad, 422) == "validation_failed"
    assert error_of(gm.post(f"{url}/migrate", json={"to": "x"}), 422) == "validation_failed"
    assert gm.get(url).json()["revision"] == 1


# -- validation -------------------------------------------------------------------------


def test_validate_reports_and_stores_nothing(gm: httpx.Client) -> None:
    before = gm.get("/v1/contexts", params={"limit": 1000}).json()["items"]
    good = gm.post("/v1/validate", json={"context_type": "conversation", "title": "Fine"})
    assert good.status_code == 200, good.text
    assert good.json()["is_valid"] is True
    bad = gm.post("/v1/validate", json={"context_type": "conversation", "title": ""}).json()
    assert bad["is_valid"] is False
    assert [(i["code"], i["path"]) for i in bad["issues"]] == [("schema.invalid", "/title")]
    typed = gm.post(
        "/v1/validate",
        params={"context_type": "collaborative", "provider": "anthropic"},
        json={"title": "Room", "active_participants": ["a", "a"]},
    ).json()
    assert "collaborative.duplicate_participant" in {i["code"] for i in typed["issues"]}
    not_an_object = gm.post("/v1/validate", json=[1]).json()
    assert not_an_object["is_valid"] is False
    assert gm.get("/v1/contexts", params={"limit": 1000}).json()["items"] == before

    assert (
        error_of(
            gm.post("/v1/validate", content=b"{", headers={"Content-Type": "application/json"}), 400
        )
        == "malformed_json"
    )
    assert (
        error_of(gm.post("/v1/validate", content=b"x", headers={"Content-Type": "text/csv"}), 415)
        == "unsupported_media_type"
    )


def test_schemas_by_type(gm: httpx.Client) -> None:
    schemas = gm.get("/v1/schemas").json()
    assert set(schemas) == {"generic", "conversation", "session", "collaborative"}
    one = gm.get("/v1/schemas/conversation").json()
    assert one == schemas["conversation"]
    assert one["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert error_of(gm.get("/v1/schemas/spaceship"), 404) == "schema_not_found"


# -- access control across every route ----------------------------------------------------

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PATCH", "?strategy=latest_wins", {"title": "mine"}),
    ("POST", "/messages", {"messages": [{"role": "user", "content": "hi"}]}),
    ("GET", "/messages", None),
    ("GET", "/events", None),
    ("POST", "/versions", {}),
    ("GET", "/versions", None),
    ("GET", "/versions/{version}", None),
    ("GET", "/diff?a={version}&b={version}", None),
    ("POST", "/rollback", {"version_id": "{version}"}),
    ("POST", "/branches", {"name": "mine"}),
    ("GET", "/branches", None),
    ("POST", "/branches/side/merge", {"strategy": "source"}),
    ("POST", "/lock", {}),
    ("POST", "/lock/renew", {}),
    ("DELETE", "/lock", None),
    ("GET", "/conflicts", None),
    ("POST", "/conflicts/{conflict}/resolve", {"resolution": {"/data/hp": "incoming"}}),
    ("GET", "/export?provider=openai", None),
    ("POST", "/migrate", {"to_provider": "anthropic"}),
]
ROOM_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/participants", None),
    ("GET", "/participants", None),
    ("DELETE", "/participants/me", None),
    ("PUT", "/presence/me", {"typing": True}),
    ("GET", "/presence", None),
]


def filled(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {filled(k, names): filled(v, names) for k, v in value.items()}
    return value


def shared_context(http: httpx.Client, user: str, permission: str) -> dict[str, str]:
    """A conversation of gm's that `user` has `permission` on (none: a stranger), with
    messages, a version, a branch that changed and a conflict waiting."""
    permissions = {user: [permission]} if permission else {}
    context_id, conflict = conflicted(http)
    url = f"/v1/contexts/{context_id}"
    http.patch(url, json={"permissions": permissions})
    say(http, context_id, "Who goes there?")
    version = http.post(f"{url}/versions", json={"message": "v"}).json()["version_id"]
    http.post(f"{url}/branches", json={"name": "side"})
    http.patch(url, params={"branch": "side"}, json={"data": {"mood": "grim"}})
    return {"context": context_id, "version": version, "conflict": conflict["conflict_id"]}


@pytest.fixture(scope="module")
def secrets(server: ServerProcess) -> dict[str, str]:
    """A conversation and a members-only room of gm's that the stranger may not read."""
    with client_for(server, "gm") as gm:
        names = shared_context(gm, "reader", "read")
        names["room"] = create(gm, context_type="collaborative", title="S", join_policy="members")
        return names


def everything_of(http: httpx.Client, context_id: str) -> list[Any]:
    url = f"/v1/contexts/{context_id}"
    return [
        http.get(url).json(),
        http.get(f"{url}/branches").json(),
        http.get(f"{url}/conflicts").json(),
        http.get(f"{url}/events").json()["items"][-1]["revision"],
    ]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES + ROOM_ROUTES)
def test_a_stranger_gets_404_on_every_route(
    server: ServerProcess,
    secrets: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    context_id = secrets["room" if (method, path, body) in ROOM_ROUTES else "context"]
    url = f"/v1/contexts/{context_id}{filled(path, secrets)}"
    with client_for(server, "stranger") as stranger, client_for(server, "gm") as gm:
        before = everything_of(gm, context_id)
        response = stranger.request(method, url, json=filled(body, secrets))
        assert error_of(response, 404) == "not_found"
        assert everything_of(gm, context_id) == before


@pytest.mark.parametrize(("method", "path", "body"), ROUTES + ROOM_ROUTES)
def test_no_token_gets_401_on_every_route(
    server: ServerProcess,
    secrets: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    url = f"/v1/contexts/{secrets['context']}{filled(path, secrets)}"
    with httpx.Client(base_url=server.url) as anonymous:
        response = anonymous.request(method, url, json=filled(body, secrets))
        assert error_of(response, 401) == "unauthorized"


WRITES = [route for route in ROUTES if route[0] not in {"GET", "DELETE"}]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_reader_may_not_write(
    server: ServerProcess, method: str, path: str, body: dict[str, Any] | None
) -> None:
    with client_for(server, "gm") as gm, client_for(server, "reader") as reader:
        names = shared_context(gm, "reader", "read")
        before = everything_of(gm, names["context"])
        url = f"/v1/contexts/{names['context']}{filled(path, names)}"
        response = reader.request(method, url, json=filled(body, names))
        assert error_of(response, 403) == "permission_denied"
        assert everything_of(gm, names["context"]) == before


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_writer_may(
    server: ServerProcess, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """What the reader is refused, a writer is granted: the refusals above are the
    permission's doing."""
    with client_for(server, "gm") as gm, client_for(server, "p1") as writer:
        names = shared_context(gm, "p1", "write")
        url = f"/v1/contexts/{names['context']}{filled(path, names)}"
        if path == "/lock/renew":
            writer.post(f"/v1/contexts/{names['context']}/lock")
        response = writer.request(method, url, json=filled(body, names))
        assert response.status_code in {200, 201}, response.text


FENCED = [route for route in WRITES if route[1] != "/lock"] + [("DELETE", "/lock", None)]


@pytest.mark.parametrize(("method", "path", "body"), FENCED)
def test_every_write_under_a_lock_is_fenced_by_its_token(
    gm: httpx.Client, method: str, path: str, body: dict[str, Any] | None
) -> None:
    names = shared_context(gm, "p1", "write")
    base = f"/v1/contexts/{names['context']}"
    token = gm.post(f"{base}/lock", json={"timeout": 60}).json()["token"]
    url, sent = f"{base}{filled(path, names)}", filled(body, names)
    before = everything_of(gm, names["context"])
    stale = gm.request(method, url, json=sent, headers={"Lock-Token": str(token - 1)})
    assert error_of(stale, 423) == "lock_lost"
    assert everything_of(gm, names["context"]) == before
    fenced = gm.request(method, url, json=sent, headers={"Lock-Token": str(token)})
    assert fenced.status_code in {200, 201, 204}, fenced.text


def test_deleting_and_restoring_under_a_lock(gm: httpx.Client) -> None:
    context_id = create(gm)
    url = f"/v1/contexts/{context_id}"
    token = gm.post(f"{url}/lock").json()["token"]
    stale = {"Lock-Token": str(token + 1)}
    assert error_of(gm.delete(url, headers=stale), 423) == "lock_lost"
    assert gm.delete(url, headers={"Lock-Token": str(token)}).status_code == 204
    assert error_of(gm.post(f"{url}/restore", headers=stale), 423) == "lock_lost"
    restored = gm.post(f"{url}/restore", headers={"Lock-Token": str(token)})
    assert restored.json()["state"] == "active"
    for bad in ("soon", "-1", "1" * 19):
        refused = gm.patch(url, json={"title": "x"}, headers={"Lock-Token": bad})
        assert error_of(refused, 400) == "bad_lock_token"


def test_merge_and_conflict_strategies_respect_the_lock(gm: httpx.Client, p1: httpx.Client) -> None:
    context_id = create(gm, data={"hp": 10}, collaborators=["p1"])
    base = f"/v1/contexts/{context_id}"
    p1.post(f"{base}/branches", json={"name": "p1-idea"})
    p1.patch(base, params={"branch": "p1-idea"}, json={"data": {"hp": 99}})
    assert gm.post(f"{base}/lock", json={"timeout": 30}).status_code == 201
    revision = gm.get(base).json()["revision"]

    merge = p1.post(f"{base}/branches/p1-idea/merge", json={"strategy": "source"})
    assert error_of(merge, 423) == "lock_held"
    settled = p1.patch(
        base,
        params={"strategy": "latest_wins"},
        json={"data": {"hp": 1}},
        headers={"If-Match": '"1"'},
    )
    assert error_of(settled, 423) == "lock_held"
    version = gm.get(f"{base}/versions").json()["items"][-1]["version_id"]
    rollback = p1.post(f"{base}/rollback", json={"version_id": version})
    assert error_of(rollback, 423) == "lock_held"
    assert gm.get(base).json()["revision"] == revision
    assert gm.get(base).json()["data"] == {"hp": 10}
    gm.delete(f"{base}/lock")
