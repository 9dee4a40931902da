"""The load test: players at a table, each with a conversation of their own, talking to
the game master's assistant through the server.

Each simulated player starts a conversation (a system prompt and an opening line), then,
pausing 0.2-1 s between actions, mostly appends turns (a user message and the assistant's
answer) and reads: the context, the last messages; now and then updates the character
sheet (a merge patch of `data`), lists their conversations, searches them, or starts
another conversation. Every request is checked: a status other than the one expected,
or an answer without what it should hold, is a failure.

In local mode (no API keys) each player acts as a user of their own
(``X-Loremaster-User``), so ownership, listings, search and rate limits are per player.
With ``LOREMASTER_API_KEYS`` set, give the players keys with ``LOREMASTER_LOAD_KEYS``
(``key1,key2,...``, one per player in turn).

Run (a server must be listening):
    locust -f benchmarks/locustfile.py --headless -u 32 -r 8 -t 60s --host http://127.0.0.1:8700
"""

from __future__ import annotations

import itertools
import os
import random
from typing import Any

from locust import FastHttpUser, between, task

SCENE = (
    "the party enters a damp crypt where torchlight flickers across carved runes and the "
    "rogue checks for traps while the cleric whispers a prayer to keep the undead at bay "
    "a distant roar echoes through the halls as the dragon stirs beneath its hoard of gold"
)
WORDS = SCENE.split()
SEARCHED = ("dragon", "crypt", "runes", "hoard", "cleric")
KEYS = [key for key in os.environ.get("LOREMASTER_LOAD_KEYS", "").split(",") if key]
_players = itertools.count(1)


def prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


class Player(FastHttpUser):
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        number = next(_players)
        self.rng = random.Random(number)
        self.headers = (
            {"Authorization": f"Bearer {KEYS[number % len(KEYS)]}"}
            if KEYS
            else {"X-Loremaster-User": f"player-{number}"}
        )
        self.turns = 0
        self.context_id = self.start_conversation()

    def start_conversation(self) -> str:
        body = {
            "context_type": "conversation",
            "title": f"{prose(self.rng, 3)} session",
            "primary_provider": "anthropic",
            "messages": [
                {"role": "system", "content": "You are a helpful D&D game master."},
                {"role": "user", "content": prose(self.rng, 20)},
            ],
            "data": {"hp": 20, "level": 1},
        }
        with self.client.post(
            "/v1/contexts", json=body, headers=self.headers, catch_response=True
        ) as response:
            context_id: str = self.expect(response, 201, "context_id")
        return context_id

    def expect(self, response: Any, status: int, key: str | None = None) -> Any:
        """The answer's JSON (its `key`), or a failure recorded when it is not as expected."""
        if response.status_code != status:
            response.failure(f"{response.status_code} (expected {status}): {response.text[:200]}")
            return None
        body = response.json()
        if key is not None and key not in body:
            response.failure(f"no {key!r} in the answer")
            return None
        response.success()
        return body if key is None else body[key]

    @property
    def url(self) -> str:
        return f"/v1/contexts/{self.context_id}"

    @task(4)
    def take_a_turn(self) -> None:
        self.turns += 1
        turn = {
            "messages": [
                {"role": "user", "content": prose(self.rng, 15)},
                {"role": "assistant", "content": prose(self.rng, 60)},
            ]
        }
        with self.client.post(
            f"{self.url}/messages",
            json=turn,
            headers=self.headers,
            name="/v1/contexts/[id]/messages",
            catch_response=True,
        ) as response:
            self.expect(response, 201, "revision")

    @task(4)
    def read_the_context(self) -> None:
        with self.client.get(
            self.url, headers=self.headers, name="/v1/contexts/[id]", catch_response=True
        ) as response:
            self.expect(response, 200, "messages")

    @task(3)
    def read_the_last_messages(self) -> None:
        with self.client.get(
            f"{self.url}/messages?limit=20",
            headers=self.headers,
            name="/v1/contexts/[id]/messages?limit=20",
            catch_response=True,
        ) as response:
            self.expect(response, 200, "items")

    @task(2)
    def update_the_sheet(self) -> None:
        sheet = {"data": {"hp": self.rng.randint(1, 20), "level": 1 + self.turns // 10}}
        with self.client.patch(
            self.url,
            json=sheet,
            headers=self.headers,
            name="/v1/contexts/[id]",
            catch_response=True,
        ) as response:
            self.expect(response, 200, "revision")

    @task(1)
    def list_my_conversations(self) -> None:
        with self.client.get(
            "/v1/contexts?context_type=conversation&limit=20",
            headers=self.headers,
            name="/v1/contexts?context_type=conversation",
            catch_response=True,
        ) as response:
            self.expect(response, 200, "items")

    @task(1)
    def search(self) -> None:
        with self.client.get(
            f"/v1/search?q={self.rng.choice(SEARCHED)}",
            headers=self.headers,
            name="/v1/search?q=[word]",
            catch_response=True,
        ) as response:
            self.expect(response, 200)

    @task(1)
    def start_another(self) -> None:
        self.context_id = self.start_conversation() or self.context_id
