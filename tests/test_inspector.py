"""The web inspector in a real browser (Debian's chromium, driven by Playwright) against a
real `loremaster serve` process: every page renders what the API holds, live changes
arrive without a reload, conflicts and rollbacks are done through the UI, and no page
logs a JavaScript error. The screenshots in docs/screenshots/ are taken here."""

from __future__ import annotations

import base64
import re
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from _browser import PHONE, OpenTab, browser, open_tab  # noqa: F401
from _server import ServerProcess, StartServer, local_server, start_server  # noqa: F401

WEBSOCKET_REFUSED = r"WebSocket connection to .* failed"
"""What chromium logs while the server is down (the test that stops it expects it)."""


def png(width: int = 160, height: int = 96) -> bytes:
    """A small gradient, made here: a PNG of the party's map."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((60 + x, 40 + y, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def every_part_kind() -> list[dict[str, Any]]:
    picture = base64.b64encode(png()).decode()
    document = base64.b64encode(b"%PDF-1.4\n1 0 obj<</Type /Page>>endobj\n%%EOF").decode()
    call = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 1234, "output_tokens": 87},
        "latency_ms": 812.5,
        "finish_reason": "tool_use",
        "cost_usd": 0.0049,
    }
    return [
        {"role": "system", "content": "You are the game master of a D&D campaign."},
        {
            "role": "user",
            "parts": [
                {"kind": "text", "text": "Here is the map. Where is the dragon?"},
                {"kind": "image", "data": picture, "media_type": "image/png"},
                {
                    "kind": "document",
                    "data": document,
                    "media_type": "application/pdf",
                    "title": "house-rules.pdf",
                },
            ],
        },
        {
            "role": "assistant",
            "parts": [
                {"kind": "thinking", "text": "The cave in the north-east.", "signature": "sig-1"},
                {"kind": "text", "text": "Roll for perception."},
                {
                    "kind": "tool_call",
                    "id": "call_1",
                    "name": "roll_dice",
                    "arguments": {"dice": "1d20", "modifier": 3},
                },
            ],
            "metadata": {"call": call},
        },
        {"role": "tool", "parts": [{"kind": "tool_result", "call_id": "call_1", "content": "15"}]},
        {"role": "assistant", "content": "15: the red dragon sleeps in the north-east cave."},
    ]


@pytest.fixture
def api(local_server: ServerProcess) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=local_server.url, timeout=10) as http:
        yield http


def create(api: httpx.Client, **fields: Any) -> str:
    response = api.post("/v1/contexts", json=fields)
    assert response.status_code == 201, response.text
    context_id: str = response.json()["context_id"]
    return context_id


def room(api: httpx.Client, **fields: Any) -> str:
    return create(
        api,
        context_type="collaborative",
        title="Party planning",
        owner_id="dm",
        collaborators=["player1"],
        shared_state={"party": {"gold": 120, "torches": 3}, "map": "north-east cave"},
        **fields,
    )


def live(page: Page) -> None:
    """Wait for the tab's WebSocket to be open."""
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")


def test_a_conversation_from_the_api_is_listed_and_every_part_kind_rendered(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    context_id = create(
        api,
        context_type="conversation",
        title="The dragon's lair",
        description="Every part kind, and a recorded call",
        messages=every_part_kind(),
        primary_provider="anthropic",
    )
    create(api, context_type="collaborative", title="Party planning", shared_state={"gold": 1})
    tab = open_tab(f"{local_server.url}/")
    page = tab.page
    row = page.locator(f'a.row[data-id="{context_id}"]')
    expect(row).to_contain_text("The dragon's lair")
    expect(row).to_contain_text("5 messages")
    tab.screenshot("contexts")

    page.keyboard.press("j")  # the keyboard reaches every row
    while page.evaluate("document.activeElement.dataset.id") != context_id:
        page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{local_server.url}/#/contexts/{context_id}")
    messages = page.locator("article.message")
    expect(messages).to_have_count(5)
    for kind in ("text", "image", "document", "tool_call", "tool_result", "thinking"):
        expect(page.locator(f'.part[data-kind="{kind}"]').first).to_be_visible()
    image = page.locator(".part[data-kind=image] img")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") == 160
    expect(page.locator(".document a")).to_have_text("house-rules.pdf")
    expect(page.locator(".tool-call")).to_contain_text("roll_dice")
    expect(page.locator(".tool-call .json")).to_contain_text('"modifier": 3')
    expect(page.locator(".tool-result")).to_contain_text("15")
    thinking = page.locator("details.thinking")
    expect(thinking).not_to_have_attribute("open", "")  # collapsed
    expect(thinking.locator(".text")).to_be_hidden()
    for card in messages.all():
        expect(card.locator(".tokens")).to_have_text(re.compile(r"^\d[\d,]* tok$"))
    expect(page.locator(".window-legend")).to_contain_text("tokens")
    call = page.locator(".call")
    expect(call).to_contain_text("claude-sonnet-4-5")
    expect(call).to_contain_text("1,234")
    expect(call).to_contain_text("813 ms")
    expect(call).to_contain_text("$0.00490")
    expect(page.locator(".window-legend")).to_contain_text("for claude-sonnet-4-5")  # the call's
    tab.screenshot("conversation", full_page=True)


def test_the_list_filters_searches_and_moves_a_changed_context_to_the_top(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    first = create(api, context_type="conversation", title="Ambush at the ford")
    create(api, context_type="session", title="player2 at the table")
    tab = open_tab(f"{local_server.url}/")
    page = tab.page
    live(page)
    rows = page.locator("a.row")
    expect(rows.first).not_to_have_attribute("data-id", first)
    api.patch(f"/v1/contexts/{first}", json={"data": {"wounded": True}})
    expect(rows.first).to_have_attribute("data-id", first, timeout=3000)
    expect(rows.first.locator(".rev")).to_have_text("r2")

    page.select_option("select[name=type]", "session")
    expect(page).to_have_url(f"{local_server.url}/#/contexts?type=session")
    expect(page.locator("a.row .kind .badge").first).to_have_text("session")
    expect(page.locator("a.row .kind .badge", has_text="conversation")).to_have_count(0)

    page.keyboard.press("/")
    page.keyboard.type("ford")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Search: ford")
    page.select_option("select[name=type]", "")
    expect(page.locator(f'a.row[data-id="{first}"]')).to_be_visible()


def test_two_pages_on_one_room_see_each_others_edits_within_a_second(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    room_id = room(api)
    url = f"{local_server.url}/#/contexts/{room_id}/room"
    game_master = open_tab(url, user="dm")
    player = open_tab(url, user="player1")
    for tab in (game_master, player):
        live(tab.page)
        tab.page.get_by_role("button", name="Join the table").click()
    for tab in (game_master, player):
        people = tab.page.locator(".people")
        expect(people.locator(".person.present", has_text="dm")).to_be_visible()
        expect(people.locator(".person.present", has_text="player1")).to_be_visible()

    gold = '[data-pointer="/party/gold"] .j-edit'
    game_master.page.locator(gold).click()
    game_master.page.keyboard.press("Control+a")
    game_master.page.keyboard.type("150")
    started = time.monotonic()
    game_master.page.keyboard.press("Enter")
    expect(player.page.locator(gold)).to_have_text("150", timeout=1000)
    assert time.monotonic() - started < 1.0
    assert api.get(f"/v1/contexts/{room_id}").json()["shared_state"]["party"]["gold"] == 150

    player.page.get_by_role("button", name="Take it for 60s").click()
    expect(game_master.page.locator(".lock .holder")).to_have_text("player1")
    expect(game_master.page.locator(".lock .time-left")).to_have_text(re.compile(r"· \d+s left"))
    game_master.screenshot("room")


def test_a_conflicting_edit_is_resolved_through_the_ui(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    room_id = room(api, conflict_policy={"strategy": "manual_merge"})
    tab = open_tab(f"{local_server.url}/#/contexts/{room_id}/room", user="dm")
    page = tab.page
    live(page)
    gold = '[data-pointer="/party/gold"] .j-edit'
    page.locator(gold).click()  # the edit starts on revision 1 ...
    changed = api.patch(
        f"/v1/contexts/{room_id}",
        json={"shared_state": {"party": {"gold": 200}}},
        headers={"X-Loremaster-User": "player1"},
    )
    assert changed.status_code == 200, changed.text  # ... and the room moves on meanwhile
    page.keyboard.press("Control+a")
    page.keyboard.type("999")
    page.keyboard.press("Enter")

    conflict = page.locator("form.conflict")
    expect(conflict).to_have_count(1)
    row = conflict.locator('tr[data-path="/shared_state/party/gold"]')
    expect(row.locator("label", has_text="current")).to_contain_text("200")
    expect(row.locator("label", has_text="incoming")).to_contain_text("999")
    expect(page.locator(gold)).to_have_text("200")  # manual_merge kept the current value
    tab.screenshot("room-conflict")
    row.locator('input[value="incoming"]').check()
    conflict.get_by_role("button", name="Resolve").click()
    expect(page.locator(gold)).to_have_text("999")
    expect(page.locator(".conflicts")).to_contain_text("No conflicts waiting.")
    assert api.get(f"/v1/contexts/{room_id}/conflicts").json() == []
    assert api.get(f"/v1/contexts/{room_id}").json()["shared_state"]["party"]["gold"] == 999


def test_rollback_from_the_timeline_changes_the_conversation_view(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    context_id = create(
        api,
        context_type="conversation",
        title="Rollback",
        messages=[
            {"role": "user", "content": "We rest."},
            {"role": "assistant", "content": "Dawn."},
        ],
    )
    version = api.post(
        f"/v1/contexts/{context_id}/versions", json={"message": "before the ambush"}
    ).json()
    api.post(
        f"/v1/contexts/{context_id}/messages",
        json={"messages": [{"role": "user", "content": "Goblins attack!"}]},
    )
    api.post(
        f"/v1/contexts/{context_id}/branches",
        json={"name": "flee", "from_version_id": version["version_id"]},
    )
    api.post(
        f"/v1/contexts/{context_id}/messages",
        params={"branch": "flee"},
        json={"messages": [{"role": "user", "content": "We run."}]},
    )
    base = f"{local_server.url}/#/contexts/{context_id}"
    tab = open_tab(f"{base}/conversation")
    page = tab.page
    live(page)
    expect(page.locator("article.message")).to_have_count(3)

    page.get_by_role("tab", name="History").click()
    row = page.locator(".version-row", has_text="before the ambush")
    expect(page.locator(".timeline .edge").first).to_be_visible()
    expect(page.locator(".branches li[data-branch=flee]")).to_be_visible()
    tab.screenshot("history")
    row.get_by_role("button", name="Roll back").click()
    dialog = page.locator("dialog#rollback")
    expect(dialog).to_contain_text("1 message(s) leave the view")
    tab.screenshot("rollback")
    dialog.get_by_role("button", name="Roll back").click()
    expect(dialog).to_have_count(0)

    page.get_by_role("tab", name="Conversation").click()
    expect(page.locator("article.message")).to_have_count(2)
    expect(page.locator("article.message", has_text="Goblins attack!")).to_have_count(0)

    page.goto(f"{base}/versions/{version['version_id']}")  # deep links: a version ...
    expect(page.locator(".version-head h2")).to_contain_text("on main")
    page.goto(f"{base}/diff?a={version['version_id']}&b=branch:flee")  # ... and a diff
    expect(page.locator(".diff-side[data-side=to]")).to_contain_text("We run.")
    expect(page.locator(".diff-side[data-side=to] .messages.added article")).to_have_count(1)
    tab.screenshot("diff")

    page.goto(f"{base}/history")
    page.locator(".branches li[data-branch=flee]").get_by_role("button", name="Merge…").click()
    dialog = page.locator("dialog#merge")
    expect(dialog).to_contain_text("1 message(s) come in.")
    dialog.get_by_role("button", name="Merge", exact=True).click()
    expect(page.locator(".timeline .dot.merge")).to_have_count(1)
    page.get_by_role("tab", name="Conversation").click()
    expect(page.locator("article.message").last).to_contain_text("We run.")


def test_the_as_sent_view_shows_three_payloads(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    context_id = create(
        api, context_type="conversation", title="As sent", messages=every_part_kind()
    )
    tab = open_tab(f"{local_server.url}/#/contexts/{context_id}/conversation")
    page = tab.page
    expect(page.locator("article.message")).to_have_count(5)
    page.keyboard.press("2")  # the second tab
    columns = page.locator(".provider-column")
    expect(columns).to_have_count(3)
    for provider, key in (
        ("anthropic", "messages"),
        ("openai", "messages"),
        ("google", "contents"),
    ):
        column = page.locator(f'.provider-column[data-provider="{provider}"]')
        expect(column.locator(f'.payload [data-pointer="/{key}"]')).to_be_visible()
        expect(column.locator(".window-legend")).to_contain_text("tokens")
    anthropic = page.locator('.provider-column[data-provider="anthropic"]')
    system = anthropic.locator('.payload .j-mark[data-pointer="/system"]')
    expect(system).to_have_attribute("data-kind", "converted")
    change = anthropic.locator(".change", has_text="system_prompt")
    change.hover()
    expect(system).to_have_class(re.compile(r"\bj-focus\b"))
    tab.screenshot("as-sent")


def test_migrating_asks_first_and_shows_what_will_change(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    context_id = create(
        api, context_type="conversation", title="Migrate", messages=every_part_kind()
    )
    tab = open_tab(f"{local_server.url}/#/contexts/{context_id}/conversation")
    page = tab.page
    page.get_by_role("button", name="Migrate…").click()
    dialog = page.locator("dialog#migrate")
    dialog.locator("select[name=to_provider]").select_option("openai")
    expect(dialog.locator(".change", has_text="thinking_dropped")).to_be_visible()
    dialog.get_by_role("button", name="Migrate", exact=True).click()
    expect(page.locator(".toast")).to_contain_text("Migrated to openai")
    assert api.get(f"/v1/contexts/{context_id}").json()["primary_provider"] == "openai"


def test_health_and_stats(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    create(api, context_type="conversation", title="Stats", messages=every_part_kind())
    tab = open_tab(f"{local_server.url}/#/stats")
    page = tab.page
    expect(page.locator("#health h2 .badge")).to_have_text("ok")
    expect(page.locator("svg.percentiles .op").first).to_be_visible()
    expect(page.locator(".ring")).to_contain_text("hit rate")
    expect(page.locator("#usage .bar-row", has_text="anthropic").first).to_be_visible()
    tab.screenshot("stats", full_page=True)


def test_readable_on_a_phone(
    api: httpx.Client,
    local_server: ServerProcess,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    context_id = create(
        api, context_type="conversation", title="On a phone", messages=every_part_kind()
    )
    room_id = room(api)
    for url, name, user in (
        (f"{local_server.url}/", None, None),
        (f"{local_server.url}/#/contexts/{context_id}", "conversation-phone", None),
        (f"{local_server.url}/#/contexts/{context_id}/sent", None, None),
        (f"{local_server.url}/#/contexts/{context_id}/history", None, None),
        (f"{local_server.url}/#/contexts/{context_id}/fields", None, None),
        (f"{local_server.url}/#/contexts/{room_id}/room", "room-phone", "dm"),
        (f"{local_server.url}/#/stats", None, None),
    ):
        tab = open_tab(url, viewport=PHONE, user=user)
        expect(tab.page.locator(".page")).to_be_visible()
        expect(tab.page.locator(".loading")).to_have_count(0)
        overflow = tab.page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"{url} is {overflow}px wider than a phone"
        if name:
            tab.screenshot(name)


def test_a_lost_connection_shows_and_resumes_from_the_last_revision(
    start_server: StartServer,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    server = start_server()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        context_id = create(
            http,
            context_type="conversation",
            title="Resume",
            messages=[{"role": "user", "content": "Before."}],
        )
    tab = open_tab(
        f"{server.url}/#/contexts/{context_id}",
        allow=(WEBSOCKET_REFUSED, r"Failed to load resource"),
    )
    page = tab.page
    live(page)
    expect(page.locator(".window-legend")).to_be_visible()  # the view has loaded
    server.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "lost")
    expect(page.locator("#notice")).to_be_visible()
    expect(page.locator("#notice")).to_contain_text("Connection lost")
    tab.screenshot("connection-lost")
    again = start_server(port=server.port)  # the same database, a new process
    with httpx.Client(base_url=again.url, timeout=10) as http:
        http.post(
            f"/v1/contexts/{context_id}/messages",
            json={"messages": [{"role": "user", "content": "While you were away."}]},
        )
    live(page)
    expect(page.locator("#notice")).to_be_hidden()
    expect(page.locator("article.message", has_text="While you were away.")).to_be_visible()
    expect(page.locator("article.message")).to_have_count(2)


def test_with_api_keys_it_asks_for_a_token_once_per_tab(
    start_server: StartServer,  # noqa: F811
    open_tab: OpenTab,  # noqa: F811
) -> None:
    server = start_server(env={"LOREMASTER_API_KEYS": "gm-key=dm"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        created = http.post(
            "/v1/contexts",
            json={"context_type": "conversation", "title": "Behind a key"},
            headers={"Authorization": "Bearer gm-key"},
        )
        assert created.status_code == 201, created.text
    unauthorized = r"status of 401"
    tab = open_tab(f"{server.url}/", allow=(unauthorized,))
    page = tab.page
    dialog = page.locator("dialog#sign-in")
    expect(dialog).to_be_visible()
    tab.screenshot("sign-in")
    dialog.locator("input[name=token]").fill("gm-key")
    dialog.get_by_role("button", name="Sign in").click()
    expect(page.locator("a.row", has_text="Behind a key")).to_be_visible()
    live(page)
    expect(page.locator("#who")).to_contain_text("dm")
    page.reload()
    expect(page.locator("a.row", has_text="Behind a key")).to_be_visible()
    expect(page.locator("dialog#sign-in")).to_have_count(0)  # kept for the tab
    other = open_tab(f"{server.url}/", allow=(unauthorized,))
    expect(other.page.locator("dialog#sign-in")).to_be_visible()  # another tab asks again
