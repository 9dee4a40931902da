"""Token counts, the model registry and fitting a conversation into a window."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Sequence

import pytest
import quicktok
from hypothesis import given, settings
from hypothesis import strategies as st

from loremaster import (
    ConfigurationError,
    ImagePart,
    Message,
    Settings,
    ToolCallPart,
    ToolResultPart,
)
from loremaster.config import ModelLimits
from loremaster.translation import (
    BUILT_IN_MODELS,
    PROVIDER_DEFAULTS,
    ContextTranslator,
    FitStrategy,
    ModelRegistry,
    image_size,
)

translator = ContextTranslator(Settings())

# OpenAI's published encoding files, by the SHA-256 that tiktoken checks them against.
OFFICIAL = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
SAMPLES = [
    "",
    "The party enters a damp crypt where torchlight flickers.",
    "  leading spaces,\n\n\ttabs and\r\nnewlines  ",
    "日本語のテキストとドラゴン🐉!",
    "don't you'll I'M they'RE",
    "12345678901 3.14159 1d20+5",
    "<|endoftext|> is just text here",
    "def roll(dice: str) -> int:\n    return sum(random.randint(1, 6) for _ in range(3))",
    "x" * 3000,
]


def _tiktoken_file(name: str) -> bytes:
    """The encoding's file rebuilt from the bytes of each token quicktok ships."""
    encoding = quicktok.get_encoding(name)
    lines = []
    for rank in range(encoding.n_vocab):
        if encoding.is_special_token(rank):
            continue
        try:
            token = encoding.decode_single_token_bytes(rank)
        except KeyError:  # ranks the encoding leaves unused
            continue
        lines.append(base64.b64encode(token) + b" " + str(rank).encode())
    return b"\n".join(lines) + b"\n"


@pytest.fixture(scope="module")
def tiktoken_encodings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """tiktoken, the reference, loading OpenAI's files from its cache: no download."""
    cache = tmp_path_factory.mktemp("tiktoken")
    for name, (url, digest) in OFFICIAL.items():
        data = _tiktoken_file(name)
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} is not OpenAI's file"
        (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(data)
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        import tiktoken

        return {name: tiktoken.get_encoding(name) for name in OFFICIAL}
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def _openai_text_tokens(text: str, model: str) -> int:
    return (
        translator.count_tokens([Message(role="user", content=text)], "openai", model).messages[0]
        - 3
    )


@pytest.mark.parametrize(
    ("model", "encoding"), [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")]
)
def test_openai_counts_are_exactly_tiktokens(
    tiktoken_encodings: dict[str, object], model: str, encoding: str
) -> None:
    reference = tiktoken_encodings[encoding]
    for text in SAMPLES:
        assert _openai_text_tokens(text, model) == len(reference.encode_ordinary(text)), text  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200))
def test_openai_counts_match_tiktoken_on_any_text(
    tiktoken_encodings: dict[str, object], text: str
) -> None:
    reference = tiktoken_encodings["o200k_base"]
    assert _openai_text_tokens(text, "gpt-4o") == len(reference.encode_ordinary(text))  # type: ignore[attr-defined]


def test_counting_needs_no_network() -> None:
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise OSError('no network')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from loremaster.translation import ContextTranslator\n"
        "messages = [{'role': 'user', 'content': 'hello world'}]\n"
        "count = ContextTranslator().count_tokens(messages, 'openai')\n"
        "assert count.exact and count.messages == (5,), count\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_message_framing_follows_openais_cookbook() -> None:
    messages = [
        Message(role="system", content="You are a helpful assistant."),
        Message(role="user", content="Hello", name="Ann"),
    ]
    count = translator.count_tokens(messages, "openai", "gpt-4o")
    texts = [_openai_text_tokens(m.text, "gpt-4o") for m in messages]
    assert count.messages == (3 + texts[0], 3 + texts[1] + 1 + _openai_text_tokens("Ann", "gpt-4o"))
    assert count.total == sum(count.messages) + 3
    assert count.exact


def test_claude_and_gemini_counts_are_estimates_that_err_high() -> None:
    text = " ".join(SAMPLES)
    openai = translator.count_tokens([{"role": "user", "content": text}], "openai", "gpt-4o")
    claude = translator.count_tokens(
        [{"role": "user", "content": text}], "anthropic", "claude-sonnet-4-5"
    )
    gemini = translator.count_tokens(
        [{"role": "user", "content": text}], "google", "gemini-2.5-pro"
    )
    assert not claude.exact
    assert not gemini.exact
    assert claude.messages[0] > gemini.messages[0] > openai.messages[0]


def _png(width: int, height: int) -> str:
    header = (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)
    )
    return base64.b64encode(header + b"\x08\x02\x00\x00\x00").decode()


@pytest.mark.parametrize(
    ("provider", "size", "detail", "tokens"),
    [
        ("openai", (1000, 1000), None, 85 + 170 * 4),
        ("openai", (1000, 1000), "low", 85),
        ("openai", (2048, 4096), "high", 85 + 170 * 6),
        ("anthropic", (1000, 1000), None, 1334),
        ("anthropic", (4000, 3000), None, 1534),
        ("google", (300, 300), None, 258),
        ("google", (1000, 1000), None, 258 * 4),
    ],
)
def test_image_tokens_follow_the_providers_rules(
    provider: str, size: tuple[int, int], detail: str | None, tokens: int
) -> None:
    image = ImagePart(data=_png(*size), media_type="image/png", detail=detail)
    count = translator.count_tokens([Message(role="user", parts=[image])], provider)
    assert count.messages[0] - (4 if provider == "anthropic" else 3) == tokens


def test_image_sizes_from_headers() -> None:
    gif = b"GIF89a" + struct.pack("<HH", 640, 480)
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0\x00\x04\x00\x00"
        + b"\xff\xc0\x00\x11\x08"
        + struct.pack(">HH", 200, 300)
    )
    webp = (
        b"RIFF\x00\x00\x00\x00WEBPVP8X"
        + b"\x00" * 8
        + (99).to_bytes(3, "little")
        + (49).to_bytes(3, "little")
    )
    assert image_size(base64.b64decode(_png(32, 16))) == (32, 16)
    assert image_size(gif) == (640, 480)
    assert image_size(jpeg) == (300, 200)
    assert image_size(webp) == (100, 50)
    assert image_size(b"not an image") is None


def test_tool_calls_results_and_definitions_are_counted() -> None:
    call = Message(
        role="assistant", parts=[ToolCallPart(id="c", name="roll", arguments={"dice": "1d20"})]
    )
    result = Message(role="tool", parts=[ToolResultPart(call_id="c", content="17")])
    tools = [
        {
            "name": "roll",
            "description": "Roll dice",
            "parameters": {"type": "object", "properties": {"dice": {"type": "string"}}},
        }
    ]
    openai = translator.count_tokens([call, result], "openai", tools=tools)
    assert openai.tools > 0
    assert not openai.exact
    claude = translator.count_tokens([call, result], "anthropic", tools=tools)
    assert claude.tools > 346  # Claude's tool-use system prompt comes with any tool
    bigger = [{**tools[0], "description": "Roll any dice the rules call for, with modifiers"}]
    assert translator.count_tokens([], "openai", tools=bigger).tools > openai.tools


# The registry.


def test_the_specs_windows_are_the_defaults() -> None:
    registry = ModelRegistry()
    assert registry.get("anthropic").context_window == 100_000
    assert registry.get("openai").context_window == 128_000
    assert registry.get("google").context_window == 1_000_000
    unknown = registry.get("openai", "gpt-99-turbo")
    assert (unknown.name, unknown.context_window, unknown.known) == ("gpt-99-turbo", 128_000, False)


@pytest.mark.parametrize(
    ("provider", "name", "registered"),
    [
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("google", "models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("google", "gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
    ],
)
def test_dated_and_prefixed_names_find_their_model(
    provider: str, name: str, registered: str
) -> None:
    assert ModelRegistry().get(provider, name).name == registered


def test_every_built_in_model_is_sane() -> None:
    names = [model.name for model in BUILT_IN_MODELS]
    assert len(names) == len(set(names))
    for model in (*BUILT_IN_MODELS, *PROVIDER_DEFAULTS.values()):
        assert 0 < model.max_output <= model.context_window, model
        assert model.encoding in ("o200k_base", "cl100k_base")


def test_context_models_overrides_and_adds(monkeypatch: pytest.MonkeyPatch) -> None:
    models = {
        "gpt-4o": {"context_window": 64000},
        "table-llm": {"provider": "openai", "max_output": 2048},
    }
    monkeypatch.setenv("CONTEXT_MODELS", json.dumps(models))
    local = ContextTranslator()
    assert local.model("openai", "gpt-4o").context_window == 64_000
    assert local.model("openai", "gpt-4o").max_output == 16_384
    added = local.model("openai", "table-llm")
    assert (added.context_window, added.max_output, added.known) == (128_000, 2048, True)
    with pytest.raises(ConfigurationError, match="give its provider"):
        ModelRegistry(overrides={"mystery": ModelLimits(context_window=10)})


# Fitting a window.


def _turns(count: int, words: int = 200) -> list[Message]:
    messages = [Message(role="system", content="You are the game master. " * 20)]
    for turn in range(count):
        messages.append(Message(role="user", content=f"turn {turn} " + "dragon " * words))
        messages.append(Message(role="assistant", content=f"reply {turn} " + "gold " * words))
    return messages


def _small(window: int = 3_000) -> ContextTranslator:
    return ContextTranslator(
        Settings(
            models={"tiny": {"provider": "openai", "context_window": window, "max_output": 500}}
        )
    )


def test_fitting_keeps_the_system_prompt_and_the_newest_turns() -> None:
    messages = _turns(20)
    fit = _small().fit_to_window(messages, "openai", "tiny")
    assert fit.fits
    assert fit.budget == 2_500
    assert fit.messages[0] == messages[0]
    assert fit.messages[-1] == messages[-1]
    assert fit.messages[1].role == "user"
    assert fit.removed == messages[1 : len(messages) - len(fit.messages) + 1]
    assert fit.tokens == translator.count_tokens(fit.messages, "openai").total


def _with_tools() -> list[Message]:
    messages = _turns(3, words=100)
    for turn in range(6):
        call_id = f"c{turn}"
        messages += [
            Message(role="user", content="attack " * 60),
            Message(
                role="assistant",
                parts=[ToolCallPart(id=call_id, name="roll", arguments={"why": "hit " * 50})],
            ),
            Message(role="tool", parts=[ToolResultPart(call_id=call_id, content="17 " * 50)]),
        ]
    return messages


@pytest.mark.parametrize("strategy", list(FitStrategy))
@pytest.mark.parametrize("window", [1_500, 2_000, 2_600, 3_200])
def test_a_tool_call_never_loses_its_result(strategy: FitStrategy, window: int) -> None:
    fit = _small(window).fit_to_window(_with_tools(), "openai", "tiny", strategy=strategy)
    ids = [m.id for m in fit.messages]
    for index, message in enumerate(fit.messages):
        if any(isinstance(part, ToolCallPart) for part in message.parts):
            assert fit.messages[index + 1].role == "tool"
        if message.role == "tool":
            assert fit.messages[index - 1].role == "assistant"
    assert fit.messages[0].role == "system"
    assert len(ids) + len(fit.removed) == len(_with_tools())


def test_the_strategies_differ_on_later_system_messages_and_where_history_starts() -> None:
    messages = _turns(6)
    messages.insert(5, Message(role="system", content="The dragon is awake now."))
    messages.insert(4, Message(role="assistant", content="(the bard hums) " * 100))
    counts = translator.count_tokens(messages, "openai")
    up_to_the_system_message = sum(counts.messages[1:7])
    window = counts.total - up_to_the_system_message + 500
    keep = _small(window).fit_to_window(messages, "openai", "tiny")
    oldest = _small(window).fit_to_window(messages, "openai", "tiny", strategy="drop-oldest")
    assert oldest.messages == [messages[0], *messages[7:]]
    assert messages[6] in keep.messages
    assert [m.role for m in keep.messages[:3]] == ["system", "system", "user"]
    assert keep.fits
    assert oldest.fits


def test_a_summarizer_stands_in_for_what_was_removed() -> None:
    seen: list[Sequence[Message]] = []

    def summarize(removed: Sequence[Message]) -> Message:
        seen.append(removed)
        return Message(role="user", content=f"Summary of {len(removed)} earlier messages.")

    fit = _small().fit_to_window(_turns(20), "openai", "tiny", summarizer=summarize)
    assert fit.summary is not None
    assert fit.messages[1] == fit.summary
    assert list(seen[-1]) == fit.removed
    assert fit.fits


def test_the_newest_turn_is_kept_even_when_nothing_fits() -> None:
    fit = _small(600).fit_to_window(_turns(2, words=400), "openai", "tiny")
    assert not fit.fits
    assert [m.role for m in fit.messages] == ["system", "assistant"]


def test_reserve_output_defaults_to_the_models_longest_answer() -> None:
    assert translator.fit_to_window([], "openai", "gpt-4o").budget == 128_000 - 16_384
    assert translator.fit_to_window([], "anthropic", reserve_output=1_000).budget == 99_000
