"""Translation: messages/s each way for every provider, token counting, LiteLLM beside it.

The conversation is a generated campaign in the neutral model: a system prompt and turns
of player and game-master prose, 60 words on average; the rich one adds parallel tool
calls (1 to 3, with JSON arguments) and their results, images in player messages and in
tool results. Every conversion is timed on the whole conversation and given per message.

Prints, for Anthropic, OpenAI and Gemini:
- messages/s of `to_provider` and `from_provider`: plain text (target >= 100,000/s) and
  rich (target >= 30,000/s), and of the six provider-to-provider translations;
- token counting: messages/s and tokens/s, exact (OpenAI) and estimated (Claude, Gemini);
- side by side, LiteLLM doing the conversions it offers (OpenAI to Anthropic and to Gemini,
  Anthropic and Gemini to OpenAI) and its token counter, in the same run; and, over a set
  of hard cases (system prompts mid-way, parallel calls, argument strings, error and image
  results, histories starting with the assistant, ...), how many of LiteLLM's outputs
  differ from loremaster's (both read back into the neutral model, provider details and
  call ids aside) and how many fail (raise, or make a payload the API would refuse).

Run: python benchmarks/bench_translation.py [--quick]   (LiteLLM comes with '.[bench]')
"""

from __future__ import annotations

import base64
import logging
import os
import random
import struct
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

from loremaster import (
    Message,
    ProviderType,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from loremaster.translation import ContextTranslator, validate_payload

from _common import QUICK, prose, row

PROVIDERS = list(ProviderType)
TURNS = 150 if QUICK else 500
SECONDS = 0.1 if QUICK else 0.4
SYSTEM = (
    "You are the game master of a Dungeons & Dragons 5e campaign. Describe scenes vividly, "
    "ask for rolls when the rules call for them and never decide for the players."
)
translator = ContextTranslator()


def png(width: int, height: int) -> str:
    """A real, tiny PNG (one grey row repeated) as base64."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    image = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
    return base64.b64encode(image + chunk(b"IEND", b"")).decode()


MAP = png(64, 48)


def campaign(rng: random.Random, turns: int, rich: bool) -> list[Message]:
    messages = [Message(role="system", content=SYSTEM)]
    for turn in range(turns):
        player: list[Any] = [{"kind": "text", "text": prose(rng, rng.randint(15, 60))}]
        if rich and rng.random() < 0.1:
            player.append({"kind": "image", "data": MAP, "media_type": "image/png"})
        messages.append(Message(role="user", content=player, name=None))
        if rich and rng.random() < 0.4:
            calls = [
                ToolCallPart(
                    id=f"call_{turn}_{n}",
                    name=rng.choice(["roll", "character_sheet", "lookup_rule"]),
                    arguments={"dice": f"{rng.randint(1, 4)}d20", "reason": prose(rng, 6)},
                )
                for n in range(rng.randint(1, 3))
            ]
            messages.append(
                Message(role="assistant", parts=[TextPart(text=prose(rng, 10)), *calls])
            )
            for call in calls:
                content: list[Any] = [
                    {"kind": "text", "text": f'{{"rolls":[{rng.randint(1, 20)}]}}'}
                ]
                if rng.random() < 0.05:
                    content.append({"kind": "image", "data": MAP, "media_type": "image/png"})
                result = ToolResultPart(call_id=call.id, content=content)
                messages.append(Message(role="tool", parts=[result]))
        messages.append(Message(role="assistant", content=prose(rng, rng.randint(40, 120))))
    return messages


def rate(call: Callable[[], object], count: int) -> float:
    """Items/s from the fastest of the runs made in SECONDS (the machine is shared)."""
    best, spent = float("inf"), 0.0
    while spent < SECONDS or best == float("inf"):
        started = time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
    return count / best


def conversions(conversation: list[Message], label: str, target: int) -> None:
    for provider in PROVIDERS:
        payload = translator.to_provider(conversation, provider).payload
        out = rate(lambda p=provider: translator.to_provider(conversation, p), len(conversation))
        back = rate(lambda p=provider, b=payload: translator.from_provider(b, p), len(conversation))
        for direction, figure in (
            (f"neutral -> {provider.value}", out),
            (f"{provider.value} -> neutral", back),
        ):
            row(
                f"  {label}: {direction}, msgs/s",
                figure,
                target=f">= {target:,}",
                ok=figure >= target,
            )


def pairs(conversation: list[Message]) -> None:
    payloads = {p: translator.to_provider(conversation, p).payload for p in PROVIDERS}
    for source in PROVIDERS:
        for target in PROVIDERS:
            if source is target:
                continue

            def trip(s: ProviderType = source, t: ProviderType = target) -> object:
                return translator.to_provider(translator.from_provider(payloads[s], s), t)

            row(f"  rich: {source.value} -> {target.value}, msgs/s", rate(trip, len(conversation)))


def counting(conversation: list[Message]) -> None:
    for provider, model in (
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("google", "gemini-2.5-pro"),
    ):
        count = translator.count_tokens(conversation, provider, model)
        per_second = rate(
            lambda p=provider, m=model: translator.count_tokens(conversation, p, m),
            len(conversation),
        )
        kind = "exact" if provider == "openai" else "estimate"
        row(f"  count_tokens {model} ({kind}), msgs/s", per_second)
        row(f"  count_tokens {model}, tokens/s", per_second * count.total / len(conversation))


# LiteLLM, beside.


def _clean(value: Any) -> Any:
    """LiteLLM's payloads carry None-valued keys it drops before sending."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def litellm_conversions() -> dict[
    tuple[ProviderType, ProviderType], Callable[[dict[str, Any]], dict[str, Any]]
]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download at import
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    from litellm.google_genai.adapters.transformation import GoogleGenAIAdapter
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig
    from litellm.llms.anthropic.pass_through.adapters.transformation import (
        LiteLLMAnthropicMessagesAdapter,
    )
    from litellm.llms.vertex_ai.gemini.transformation import transform_request_body

    def to_anthropic(payload: dict[str, Any]) -> dict[str, Any]:
        request = AnthropicConfig().transform_request(
            "claude-sonnet-4-5", [dict(m) for m in payload["messages"]], {}, {}, {}
        )
        return {key: request[key] for key in ("system", "messages") if key in request}

    def to_gemini(payload: dict[str, Any]) -> dict[str, Any]:
        request = transform_request_body(
            [dict(m) for m in payload["messages"]], "gemini-2.5-flash", {}, "gemini", {}, None
        )
        return {key: request[key] for key in ("system_instruction", "contents") if key in request}

    def from_anthropic(payload: dict[str, Any]) -> dict[str, Any]:
        request, _ = LiteLLMAnthropicMessagesAdapter().translate_anthropic_to_openai(
            {"model": "claude-sonnet-4-5", "max_tokens": 1024, **payload}
        )
        return {"messages": request["messages"]}

    def from_gemini(payload: dict[str, Any]) -> dict[str, Any]:
        request = GoogleGenAIAdapter().translate_generate_content_to_completion(
            "gemini-2.5-flash",
            payload["contents"],
            system_instruction=payload.get("system_instruction"),
        )
        return {"messages": request["messages"]}

    openai, anthropic, google = ProviderType.OPENAI, ProviderType.ANTHROPIC, ProviderType.GOOGLE
    return {
        (openai, anthropic): to_anthropic,
        (openai, google): to_gemini,
        (anthropic, openai): from_anthropic,
        (google, openai): from_gemini,
    }


def hard_cases() -> dict[str, list[Any]]:
    """No image links: LiteLLM downloads them to inline them, and this bench stays offline."""

    def call(call_id: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"kind": "tool_call", "id": call_id, "name": "roll", "arguments": arguments or {}}

    def result(call_id: str, *texts: str, error: bool = False) -> dict[str, Any]:
        return {
            "kind": "tool_result",
            "call_id": call_id,
            "content": [{"kind": "text", "text": t} for t in texts],
            "is_error": error,
        }

    image = {"kind": "image", "data": MAP, "media_type": "image/png"}
    start = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "I attack."}]
    return {
        "system prompt mid-way": [
            *start,
            {"role": "assistant", "content": "Roll."},
            {"role": "system", "content": "The dragon wakes."},
            {"role": "user", "content": "Run!"},
        ],
        "two leading system prompts": [{"role": "system", "content": "Rules."}, *start],
        "parallel tool calls": [
            *start,
            {"role": "assistant", "parts": [call("a"), call("b")]},
            {"role": "tool", "parts": [result("a", "17")]},
            {"role": "tool", "parts": [result("b", "4")]},
        ],
        "empty arguments": [
            *start,
            {"role": "assistant", "parts": [call("a")]},
            {"role": "tool", "parts": [result("a", "3")]},
        ],
        "error result": [
            *start,
            {"role": "assistant", "parts": [call("a")]},
            {"role": "tool", "parts": [result("a", "no slots", error=True)]},
        ],
        "JSON object result": [
            *start,
            {"role": "assistant", "parts": [call("a")]},
            {"role": "tool", "parts": [result("a", '{"hp":3}')]},
        ],
        "several texts in a result": [
            *start,
            {"role": "assistant", "parts": [call("a")]},
            {"role": "tool", "parts": [result("a", "one", "two")]},
        ],
        "image from the user": [
            {"role": "user", "content": [{"kind": "text", "text": "Where?"}, image]}
        ],
        "image in a tool result": [
            *start,
            {"role": "assistant", "parts": [call("a")]},
            {
                "role": "tool",
                "parts": [
                    {**result("a", "map"), "content": [{"kind": "text", "text": "map"}, image]}
                ],
            },
        ],
        "history starts with the assistant": [
            {"role": "assistant", "content": "Welcome."},
            {"role": "user", "content": "Hi"},
        ],
        "assistant text then a call": [
            *start,
            {"role": "assistant", "content": "Let me roll."},
            {"role": "assistant", "parts": [call("a")]},
            {"role": "tool", "parts": [result("a", "9")]},
        ],
        "empty text next to a call": [
            *start,
            {"role": "assistant", "parts": [{"kind": "text", "text": ""}, call("a")]},
            {"role": "tool", "parts": [result("a", "2")]},
        ],
        "text after a call": [
            *start,
            {"role": "assistant", "parts": [call("a"), {"kind": "text", "text": "Rolling."}]},
            {"role": "tool", "parts": [result("a", "2")]},
        ],
        "odd tool call id": [
            *start,
            {"role": "assistant", "parts": [call("call.1/x" + "y" * 40)]},
            {"role": "tool", "parts": [result("call.1/x" + "y" * 40, "5")]},
        ],
        "nested arguments": [
            *start,
            {
                "role": "assistant",
                "parts": [
                    call("a", {"targets": [{"name": "goblin", "ac": 12}], "advantage": True})
                ],
            },
            {"role": "tool", "parts": [result("a", "hit")]},
        ],
        "player names": [
            {"role": "user", "content": "I search.", "name": "Ann"},
            {"role": "user", "content": "Me too.", "name": "Bo"},
        ],
        "PDF document": [
            {
                "role": "user",
                "content": [
                    {"kind": "text", "text": "Rules:"},
                    {
                        "kind": "document",
                        "data": base64.b64encode(b"%PDF-1.4").decode(),
                        "media_type": "application/pdf",
                    },
                ],
            }
        ],
    }


def _semantic(messages: list[Message]) -> list[Any]:
    return [
        (m.role, [p.model_dump(exclude={"provider_data", "id", "call_id"}) for p in m.parts])
        for m in messages
    ]


def compare(
    converters: dict[tuple[ProviderType, ProviderType], Callable[[dict[str, Any]], dict[str, Any]]],
) -> None:
    cases = hard_cases()
    for (source, target), convert in converters.items():
        differs = fails = 0
        for conversation in cases.values():
            given = translator.to_provider(conversation, source).payload
            ours = translator.to_provider(translator.from_provider(given, source), target).payload
            try:
                theirs = _clean(convert(given))
                validate_payload(theirs, target)
                read = translator.from_provider(theirs, target)
            except Exception:  # whatever LiteLLM raises, and payloads the API would refuse
                fails += 1
                continue
            differs += _semantic(read) != _semantic(translator.from_provider(ours, target))
        row(
            f"  LiteLLM {source.value} -> {target.value}: {len(cases)} hard cases",
            f"{differs} differ",
            f"{fails} fail",
        )


def litellm_figures(rich: list[Message]) -> None:
    try:
        converters = litellm_conversions()
    except ImportError:
        print("  LiteLLM is not installed (pip install -e '.[bench]'): skipped")
        return
    import litellm

    for (source, target), convert in converters.items():
        payload = translator.to_provider(rich, source).payload
        ours = rate(
            lambda s=source, t=target, p=payload: translator.to_provider(
                translator.from_provider(p, s), t
            ),
            len(rich),
        )
        theirs = rate(lambda c=convert, p=payload: c(p), len(rich))
        row(f"  rich: {source.value} -> {target.value}, msgs/s", ours, theirs)
    openai = translator.to_provider(rich, "openai").payload["messages"]
    ours_count = translator.count_tokens(rich, "openai", "gpt-4o").total
    theirs_count = litellm.token_counter(model="gpt-4o", messages=openai)
    row(
        "  count tokens gpt-4o, msgs/s",
        rate(lambda: translator.count_tokens(rich, "openai", "gpt-4o"), len(rich)),
        rate(lambda: litellm.token_counter(model="gpt-4o", messages=openai), len(rich)),
    )
    row("  count tokens gpt-4o, tokens counted", ours_count, theirs_count)
    compare(converters)


def main() -> None:
    rng = random.Random(2026)
    plain = campaign(rng, TURNS, rich=False)
    rich = campaign(rng, TURNS, rich=True)
    quick = " (quick)" if QUICK else ""
    print(f"bench_translation: {len(plain):,} plain and {len(rich):,} rich messages{quick}")
    print()
    row("conversion", "msgs/s")
    conversions(plain, "plain", 100_000)
    conversions(rich, "rich", 30_000)
    pairs(rich)
    print()
    row("token counting", "figure")
    counting(rich)
    print()
    row("beside LiteLLM", "loremaster", "LiteLLM")
    litellm_figures(rich)


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
