"""The server's context routes, errors and authentication, over real sockets: a
`loremaster serve` process on a free loopback port, httpx against it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator

import httpx
import jwt
import pytest

from _server import ServerProcess, StartServer, free_port, local_server, start_server  # noqa: F401


@pytest.fixture
def client(local_server: ServerProcess) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=local_server.url, timeout=10) as http:
        yield http


def create(client: httpx.Client, **fields: object) -> dict[str, object]:
    body = {"context_type": "conversation", "title": "The dragon's lair", **fields}
    response = client.post("/v1/contexts", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    code: str = body["error"]["code"]
    return code


def test_create_then_read_with_its_revision_as_etag(client: httpx.Client) -> None:
    created = create(client, data={"hp": 10})
    assert created["revision"] == 1
    context_id = created["context_id"]
    response = client.get(f"/v1/contexts/{context_id}")
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json()["data"] == {"hp": 10}
    again = client.get(f"/v1/contexts/{context_id}", headers={"If-None-Match": '"1"'})
    assert again.status_code == 304


def test_merge_patch_json_patch_and_if_match(client: httpx.Client) -> None:
    context_id = create(client, data={"hp": 10, "xp": 0})["context_id"]
    url = f"/v1/contexts/{context_id}"
    merged = client.patch(url, json={"data": {"hp": 7}}, headers={"If-Match": '"1"'})
    assert merged.status_code == 200, merged.text
    assert merged.headers["etag"] == '"2"'
    assert merged.json()["data"] == {"hp": 7, "xp": 0}

    stale = client.patch(url, json={"data": {"hp": 1}}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert error_of(stale) == "precondition_failed"
    assert client.get(url).json()["data"]["hp"] == 7  # nothing changed

    ops = [{"op": "replace", "path": "/data/xp", "value": 50}]
    patched = client.patch(
        url,
        content=httpx.Response(200, json=ops).content,
        headers={"Content-Type": "application/json-patch+json", "If-Match": '"2"'},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"] == {"hp": 7, "xp": 50}


def test_a_stale_write_naming_a_strategy_is_settled(client: httpx.Client) -> None:
    context_id = create(client, data={"hp": 10, "xp": 0})["context_id"]
    url = f"/v1/contexts/{context_id}"
    client.patch(url, json={"data": {"hp": 5}})
    settled = client.patch(
        f"{url}?strategy=automatic_merge", json={"data": {"xp": 9}}, headers={"If-Match": '"1"'}
    )
    assert settled.status_code == 200, settled.text
    assert settled.json()["data"] == {"hp": 5, "xp": 9}


def test_delete_restore_and_hard_delete(client: httpx.Client) -> None:
    context_id = create(client)["context_id"]
    url = f"/v1/contexts/{context_id}"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.get(url, params={"include_deleted": True}).json()["state"] == "deleted"
    assert client.post(f"{url}/restore").json()["state"] == "active"
    assert client.delete(url, params={"hard": True}).status_code == 204
    assert client.get(url, params={"include_deleted": True}).status_code == 404


def test_list_pages_with_a_cursor_and_search(client: httpx.Client) -> None:
    tag = "listing-" + free_port().__str__()
    ids = {create(client, title=f"{tag} {n}")["context_id"] for n in range(5)}
    seen: set[object] = set()
    cursor = None
    while True:
        params: dict[str, object] = {"title_contains": tag, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/contexts", params=params).json()
        seen |= {item["context_id"] for item in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    hits = client.get("/v1/search", params={"q": tag}).json()
    assert hits
    assert {hit["context_id"] for hit in hits} <= ids


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "post",
            "/v1/contexts",
            {"content": b"{bad", "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_json",
        ),
        (
            "post",
            "/v1/contexts",
            {"content": b"[" * 5000 + b"]" * 5000, "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_json",
        ),
        (
            "post",
            "/v1/contexts",
            {"content": b"title=x", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ("post", "/v1/contexts", {"json": [1, 2]}, 422, "validation_failed"),
        ("post", "/v1/contexts", {"json": {"context_type": "spaceship"}}, 422, "validation_failed"),
        (
            "post",
            "/v1/contexts",
            {"json": {"context_type": "conversation", "title": 5}},
            422,
            "validation_failed",
        ),
        ("get", "/v1/contexts/not-a-uuid", {}, 404, "not_found"),
        ("get", "/v1/contexts/00000000-0000-4000-8000-000000000000", {}, 404, "not_found"),
        ("get", "/v1/contexts", {"params": {"limit": 0}}, 422, "validation_failed"),
        ("get", "/v1/contexts", {"params": {"cursor": "forged"}}, 422, "validation_failed"),
        ("get", "/v1/nowhere", {}, 404, "not_found"),
        ("put", "/v1/contexts", {}, 405, "method_not_allowed"),
    ],
)
def test_bad_requests_get_the_one_error_shape(  # noqa: PLR0917
    client: httpx.Client, method: str, path: str, kwargs: dict[str, object], status: int, code: str
) -> None:
    before = client.get("/v1/contexts", params={"limit": 1000}).json()["items"]
    response = client.request(method.upper(), path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert error_of(response) == code
    assert client.get("/v1/contexts", params={"limit": 1000}).json()["items"] == before


def test_bodies_over_the_limit_are_refused_before_they_are_read(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(env={"CONTEXT_MAX_SIZE_MB": "0.1"})
    big = b'{"title": "' + b"a" * 400_000 + b'"}'
    with httpx.Client(base_url=server.url) as http:
        declared = http.post(
            "/v1/contexts", content=big, headers={"Content-Type": "application/json"}
        )
        assert declared.status_code == 413
        assert error_of(declared) == "payload_too_large"

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 8192):
                yield big[start : start + 8192]

        streamed = http.post(
            "/v1/contexts", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert http.get("/v1/contexts").json()["items"] == []


def test_integers_past_64_bits_stay_exact_or_are_refused(client: httpx.Client) -> None:
    body = b'{"context_type": "conversation", "title": "t", "data": {"n": 1234567890123456789012}}'
    response = client.post(
        "/v1/contexts", content=body, headers={"Content-Type": "application/json"}
    )
    if response.status_code == 201:
        assert response.json()["data"]["n"] == 1234567890123456789012
    else:
        assert response.status_code == 422


# -- authentication ---------------------------------------------------------------------

SECRET = "test-secret-that-is-long-enough-for-hs256"


def token_for(user: str, *, seconds: int = 60, secret: str = SECRET) -> str:
    exp = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return jwt.encode({"sub": user, "exp": exp}, secret, algorithm="HS256")


def test_api_keys_and_jwts_name_the_user_and_strangers_see_404(
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(
        env={"LOREMASTER_API_KEYS": "key-gm=dm,key-p1=player1", "LOREMASTER_JWT_SECRET": SECRET}
    )
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/v1/contexts").status_code == 401
        assert (
            error_of(http.get("/v1/contexts", headers={"Authorization": "Bearer nope"}))
            == "unauthorized"
        )
        expired = {"Authorization": f"Bearer {token_for('dm', seconds=-10)}"}
        assert http.get("/v1/contexts", headers=expired).status_code == 401
        forged = {
            "Authorization": f"Bearer {token_for('dm', secret='another-secret-of-enough-length!')}"
        }
        assert http.get("/v1/contexts", headers=forged).status_code == 401

        gm = {"Authorization": "Bearer key-gm"}
        created = http.post(
            "/v1/contexts", json={"context_type": "conversation", "title": "secret"}, headers=gm
        )
        assert created.status_code == 201
        assert created.json()["owner_id"] == "dm"
        url = f"/v1/contexts/{created.json()['context_id']}"

        as_jwt = {"Authorization": f"Bearer {token_for('dm')}"}
        assert http.get(url, headers=as_jwt).status_code == 200

        stranger = {"Authorization": "Bearer key-p1"}
        for response in (
            http.get(url, headers=stranger),
            http.patch(url, json={"title": "mine"}, headers=stranger),
            http.delete(url, headers=stranger),
        ):
            assert response.status_code == 404
            assert error_of(response) == "not_found"
        assert http.get(url, headers=gm).json()["title"] == "secret"

        unknown = http.get("/v1/contexts/00000000-0000-4000-8000-000000000000", headers=stranger)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "not_found"


def test_local_mode_refuses_a_host_other_than_loopback(tmp_path: object) -> None:
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "loremaster",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert ran.returncode == 1
    assert "refusing to serve on 0.0.0.0 without authentication" in ran.stderr


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "attacker.example:8700"},
        {"Host": "127.0.0.1.attacker.example"},
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
    ],
)
def test_local_mode_takes_only_requests_meant_for_this_machine(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    """A page elsewhere cannot use the browser of the person running a local server (DNS
    rebinding, a cross-site request): local mode trusts only loopback hosts and origins."""
    before = client.get("/v1/contexts", params={"limit": 1000}).json()["items"]
    body = {"context_type": "conversation", "title": "planted"}
    response = client.post("/v1/contexts", json=body, headers=headers)
    assert response.status_code == 403
    assert error_of(response) == "not_local"
    assert client.get("/v1/contexts", headers=headers).status_code == 403
    assert client.get("/v1/contexts", params={"limit": 1000}).json()["items"] == before
    same_site = client.get("/v1/contexts", headers={"Origin": client.base_url.__str__()})
    assert same_site.status_code == 200
