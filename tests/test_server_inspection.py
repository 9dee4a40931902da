"""The inspector's own routes over real sockets: its page and assets, tokens per message,
a conversation as each provider receives it (the export route's payload with the
translation report placed on it), the models, the caller, the current lock, and the
recorded calls' usage."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from _server import ServerProcess, StartServer, local_server, start_server  # noqa: F401
from loremaster.server._inspector import ASSETS
from loremaster.translation import ContextTranslator

PROVIDERS = ("anthropic", "openai", "google")

TOOL_TURNS: list[dict[str, Any]] = [
    {"role": "system", "content": "You are the game master."},
    {"role": "user", "content": "Roll for both of us."},
    {
        "role": "assistant",
        "parts": [
            {"kind": "text", "text": "Rolling."},
            {"kind": "tool_call", "id": "a", "name": "roll", "arguments": {"dice": "1d20"}},
            {"kind": "tool_call", "id": "b", "name": "roll", "arguments": {"dice": "1d20"}},
        ],
    },
    {"role": "tool", "parts": [{"kind": "tool_result", "call_id": "a", "content": "12"}]},
    {"role": "tool", "parts": [{"kind": "tool_result", "call_id": "b", "content": "17"}]},
    {"role": "user", "content": "And now?"},
    {"role": "assistant", "content": "Borin hits the dragon."},
]


@pytest.fixture
def client(local_server: ServerProcess) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=local_server.url, timeout=10) as http:
        yield http


def conversation(client: httpx.Client, messages: list[dict[str, Any]], **fields: Any) -> str:
    body = {"context_type": "conversation", "title": "Inspected", "messages": messages, **fields}
    response = client.post("/v1/contexts", json=body)
    assert response.status_code == 201, response.text
    context_id: str = response.json()["context_id"]
    return context_id


def resolve(document: Any, pointer: str) -> Any:
    for part in pointer.lstrip("/").split("/"):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_the_page_and_every_asset_are_served(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/ui/js/main.js">' in page.text
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for asset in sorted(ASSETS.rglob("*.*")):
        served = client.get(f"/ui/{asset.relative_to(ASSETS).as_posix()}")
        assert served.status_code == 200, asset
        assert served.content == asset.read_bytes()
        if asset.suffix in types:
            assert served.headers["content-type"].startswith(types[asset.suffix]), asset
    for missing in ("/ui/js/nothing.js", "/ui/../_inspector.py", "/ui/%2e%2e/_inspection.py"):
        answer = client.get(missing)
        assert answer.status_code == 404, missing
        assert answer.json()["error"]["code"] == "not_found"


def test_every_module_import_names_a_file_that_exists() -> None:
    imports = re.compile(r'^import .* from "(\.[^"]+)";$', re.MULTILINE)
    for module in ASSETS.rglob("*.js"):
        for target in imports.findall(module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"


def test_tokens_per_message_and_the_window(client: httpx.Client) -> None:
    context_id = conversation(client, TOOL_TURNS)
    counted = client.get(
        f"/v1/contexts/{context_id}/tokens", params={"provider": "openai", "model": "gpt-4o"}
    )
    assert counted.status_code == 200, counted.text
    body = counted.json()
    stored = client.get(f"/v1/contexts/{context_id}").json()["messages"]
    expected = ContextTranslator().count_tokens(stored, "openai", "gpt-4o")
    assert [m["tokens"] for m in body["messages"]] == list(expected.messages)
    assert [m["id"] for m in body["messages"]] == [m["id"] for m in stored]
    assert [m["seq"] for m in body["messages"]] == list(range(1, len(TOOL_TURNS) + 1))
    assert body["total"] == expected.total
    assert (body["model"], body["context_window"], body["max_output"]) == (
        "gpt-4o",
        128_000,
        16_384,
    )
    assert body["known_model"] is True


def test_a_context_without_messages_counts_nothing(client: httpx.Client) -> None:
    room = client.post("/v1/contexts", json={"context_type": "collaborative", "title": "Room"})
    answer = client.get(
        f"/v1/contexts/{room.json()['context_id']}/tokens", params={"provider": "anthropic"}
    )
    assert answer.status_code == 200
    assert answer.json()["messages"] == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_as_sent_is_the_export_routes_payload_with_its_report(
    client: httpx.Client, provider: str
) -> None:
    context_id = conversation(client, TOOL_TURNS)
    sent = client.get(f"/v1/contexts/{context_id}/as-sent", params={"provider": provider})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    exported = client.get(f"/v1/contexts/{context_id}/export", params={"provider": provider})
    assert body["payload"] == exported.json()
    assert body["removed_to_fit"] == 0
    placed = sorted(i for entry in body["entries"] for i in entry["changes"])
    assert placed == list(range(len(body["report"]["changes"])))
    for entry in body["entries"]:
        resolve(body["payload"], entry["pointer"])  # every pointer is in the payload


def test_entries_follow_each_providers_grouping(client: httpx.Client) -> None:
    context_id = conversation(client, TOOL_TURNS)

    def entries(provider: str) -> tuple[list[str], dict[str, Any]]:
        body = client.get(
            f"/v1/contexts/{context_id}/as-sent", params={"provider": provider}
        ).json()
        return [entry["pointer"] for entry in body["entries"]], body

    openai, _ = entries("openai")
    assert openai == [f"/messages/{i}" for i in range(7)]
    anthropic, body = entries("anthropic")
    assert anthropic == ["/system", *(f"/messages/{i}" for i in range(5))]
    assert len(body["payload"]["messages"]) == 5  # the two tool results are one user turn
    system_entry = body["entries"][0]
    codes = [body["report"]["changes"][i]["code"] for i in system_entry["changes"]]
    assert codes == ["system_prompt"]
    google, body = entries("google")
    assert google == ["/system_instruction", *(f"/contents/{i}" for i in range(4))]
    assert len(body["payload"]["contents"]) == 4  # results and the user message after: one turn


def test_as_sent_marks_what_fitting_left_out(client: httpx.Client) -> None:
    long = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 2000} for i in range(9)
    ]
    context_id = conversation(client, long)
    body = client.get(
        f"/v1/contexts/{context_id}/as-sent",
        params={"provider": "openai", "model": "gpt-4", "reserve_output": 0},
    ).json()
    assert body["removed_to_fit"] > 0
    assert body["tokens"] <= body["context_window"] == 8_192
    assert len(body["payload"]["messages"]) == 9 - body["removed_to_fit"]


def test_models_and_their_providers_defaults(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    names = {model["name"]: model for model in body["models"]}
    assert names["claude-sonnet-4-5"]["provider"] == "anthropic"
    assert names["gpt-4o"]["context_window"] == 128_000
    assert set(body["defaults"]) == set(PROVIDERS)


def test_the_lock_its_holder_and_its_end(client: httpx.Client) -> None:
    room = client.post(
        "/v1/contexts", json={"context_type": "collaborative", "title": "Room", "owner_id": "gm"}
    )
    url = f"/v1/contexts/{room.json()['context_id']}/lock"
    assert client.get(url).json() == {"lock": None}
    as_gm = {"X-Loremaster-User": "gm"}
    taken = client.post(url, json={"timeout": 60}, headers=as_gm)
    assert taken.status_code == 201, taken.text
    lock = client.get(url).json()["lock"]
    assert lock["holder"] == "gm"
    assert lock["token"] == taken.json()["token"]
    assert lock["expires_at"] == taken.json()["expires_at"]
    assert client.delete(url, headers=as_gm).status_code == 204
    assert client.get(url).json() == {"lock": None}


def test_usage_sums_the_recorded_calls_per_provider(client: httpx.Client) -> None:
    def reply(provider: str, tokens: int, cost: float) -> dict[str, Any]:
        call = {
            "provider": provider,
            "model": "m",
            "usage": {"input_tokens": tokens, "output_tokens": 10},
            "latency_ms": 100.0,
            "cost_usd": cost,
        }
        return {"role": "assistant", "content": "ok", "metadata": {"call": call}}

    messages = [{"role": "user", "content": "hi"}, reply("anthropic", 1000, 0.01)]
    messages += [reply("anthropic", 500, 0.02), reply("openai", 300, 0.5)]
    messages.append({"role": "assistant", "content": "x", "metadata": {"call": "not a call"}})
    conversation(client, messages)
    usage = client.get("/v1/usage", params={"contexts": 1}).json()
    assert usage["contexts_scanned"] == 1
    anthropic = usage["providers"]["anthropic"]
    assert (anthropic["calls"], anthropic["input_tokens"], anthropic["output_tokens"]) == (
        2,
        1500,
        20,
    )
    assert anthropic["cost_usd"] == pytest.approx(0.03)
    assert usage["providers"]["openai"]["calls"] == 1


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/tokens", {"provider": "bogus"}, 422),
        ("/tokens", {}, 422),
        ("/tokens", {"provider": "openai", "model": ""}, 422),
        ("/as-sent", {"provider": "openai", "reserve_output": -1}, 422),
        ("/as-sent", {"provider": "openai", "branch": "nowhere"}, 404),
    ],
)
def test_bad_questions_get_the_one_error_shape(
    client: httpx.Client, path: str, params: dict[str, Any], status: int
) -> None:
    context_id = conversation(client, TOOL_TURNS[:2])
    answer = client.get(f"/v1/contexts/{context_id}{path}", params=params)
    assert answer.status_code == status, answer.text
    assert set(answer.json()["error"]) == {"code", "message", "details"}


def test_a_stranger_learns_nothing(start_server: StartServer) -> None:  # noqa: F811
    server = start_server(env={"LOREMASTER_API_KEYS": "gm-key=dm,player-key=player1"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        gm, player = {"Authorization": "Bearer gm-key"}, {"Authorization": "Bearer player-key"}
        assert http.get("/v1/me").status_code == 401
        assert http.get("/v1/me", headers=gm).json() == {
            "user_id": "dm",
            "name": "dm",
            "local_mode": False,
        }
        created = http.post(
            "/v1/contexts", json={"context_type": "conversation", "title": "Secret"}, headers=gm
        )
        context_id = created.json()["context_id"]
        for path in ("/tokens?provider=openai", "/as-sent?provider=openai", "/lock"):
            answer = http.get(f"/v1/contexts/{context_id}{path}", headers=player)
            assert answer.status_code == 404, path
        assert http.get("/", headers={}).status_code == 200  # the page itself asks for a token
