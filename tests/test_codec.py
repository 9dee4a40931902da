from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loremaster import (
    ConfigurationError,
    ConversationContext,
    DataCorrupted,
    LoremasterError,
    Message,
    PayloadTooLarge,
    UnsupportedFormat,
    UntrustedPayload,
)
from loremaster.codec import (
    LEVELS,
    Codec,
    Compression,
    Format,
    decode,
    encode,
    inspect_blob,
    train_dictionary,
)

SECRET = b"table-secret"
COMBINATIONS = [(c, level) for c in Compression for level in LEVELS[c]]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=30)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
typed_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=30)
    | st.binary(max_size=40)
    | st.uuids()
    | st.datetimes(
        timezones=st.none()
        | st.just(UTC)
        | st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-720, 720))
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize(("compression", "level"), COMBINATIONS)
@settings(max_examples=15)
@given(value=json_values)
def test_json_round_trips_at_every_compression_and_level(
    compression: Compression, level: int, value: Any
) -> None:
    codec = Codec(format="json", compression=compression, level=level)
    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize(("compression", "level"), COMBINATIONS)
@settings(max_examples=15)
@given(value=typed_values)
def test_msgpack_and_pickle_round_trip_with_types(
    compression: Compression, level: int, value: Any
) -> None:
    codec = Codec(compression=compression, level=level, secret=SECRET)
    for fmt in (Format.MSGPACK, Format.PICKLE):
        again = codec.decode(codec.encode(value, fmt))
        assert again == value
        assert type(again) is type(value)


@given(value=st.binary(max_size=5000))
def test_raw_bytes_round_trip_with_auto(value: bytes) -> None:
    codec = Codec(format="raw")
    assert codec.decode(codec.encode(value)) == value


def test_msgpack_keeps_datetimes_uuids_bytes_and_models() -> None:
    when = datetime(2026, 11, 24, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    context = ConversationContext(title="t", messages=[Message(role="user", content="hi")])
    value = {"when": when, "id": uuid.UUID(int=7), "raw": b"\x00\x01", "context": context}
    again = Codec().decode(Codec().encode(value))
    assert again == value
    assert again["when"].utcoffset() == timedelta(hours=2)
    assert isinstance(again["context"], ConversationContext)
    assert isinstance(again["context"].messages[0], Message)


def test_decode_needs_no_arguments_after_defaults_change() -> None:
    old = Codec(format="json", compression="brotli").encode({"a": 1})
    assert Codec(format="msgpack", compression="lz4").decode(old) == {"a": 1}
    assert decode(encode([1, 2, 3])) == [1, 2, 3]


def test_auto_stores_small_and_incompressible_payloads_raw() -> None:
    codec = Codec(format="raw")
    assert inspect_blob(codec.encode(b"tiny")).compression is Compression.NONE
    assert inspect_blob(codec.encode(os.urandom(200_000))).compression is Compression.NONE
    prose = b"the red dragon sleeps on a hoard of gold while the party whispers " * 500
    blob = codec.encode(prose)
    assert inspect_blob(blob).compression is Compression.ZSTD
    assert len(blob) < len(prose) * 0.1


def test_header_describes_the_blob() -> None:
    blob = Codec(secret=SECRET).encode({"x": "y" * 1000}, "pickle", "gzip", 9)
    header = inspect_blob(blob).describe()
    assert header["format"] == "pickle"
    assert header["compression"] == "gzip"
    assert header["signed"] is True
    assert header["stored_bytes"] == len(blob)


class Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(os.environ["LOREMASTER_PWNED"]),))


def _forged_pickle(signed_with: bytes | None) -> bytes:
    """A pickle blob that would create a file when loaded."""
    if signed_with is None:
        body = pickle.dumps(Exploit())
        head = struct.pack(
            ">4sBBBBII", b"\x89LMC", 1, Format.PICKLE, Compression.NONE, 2, 0, len(body)
        )
        return head + struct.pack(">I", zlib.crc32(body)) + body
    return Codec(secret=signed_with).encode(Exploit(), "pickle", "none")


@pytest.mark.parametrize(
    "signed_with", [None, b"the attacker's key"], ids=["unsigned", "wrong key"]
)
def test_untrusted_pickles_are_refused_and_run_nothing(
    signed_with: bytes | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("LOREMASTER_PWNED", str(marker))
    blob = _forged_pickle(signed_with)
    for codec in (Codec(secret=SECRET), Codec()):
        with pytest.raises(UntrustedPayload):
            codec.decode(blob)
    assert not marker.exists()


def test_pickle_cannot_be_chosen_without_a_secret() -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        Codec(format="pickle")
    with pytest.raises(ConfigurationError, match="secret"):
        Codec().encode({"a": 1}, "pickle")


def test_bad_input_gets_typed_errors() -> None:
    codec = Codec()
    good = codec.encode({"quest": "Dragon's Lair" * 100})
    with pytest.raises(DataCorrupted):
        codec.decode(good[:10])
    with pytest.raises(DataCorrupted, match="checksum"):
        codec.decode(good[:-5])
    flipped = bytearray(good)
    flipped[-3] ^= 0xFF
    with pytest.raises(DataCorrupted, match="checksum"):
        codec.decode(bytes(flipped))
    with pytest.raises(UnsupportedFormat, match="magic"):
        codec.decode(b"PK\x03\x04" + good[4:])
    with pytest.raises(UnsupportedFormat, match="unknown format"):
        codec.decode(good[:5] + b"\x09" + good[6:])
    with pytest.raises(UnsupportedFormat, match="unknown format"):
        codec.decode(good[:6] + b"\x09" + good[7:])
    with pytest.raises(UnsupportedFormat, match="version"):
        codec.decode(good[:4] + b"\x07" + good[5:])
    with_dictionary = Codec(format="raw", dictionaries={5: _dictionary()})
    other = with_dictionary.encode(b"abc " * 400, compression="zstd", dictionary_id=5)
    with pytest.raises(UnsupportedFormat, match="dictionary 5"):
        codec.decode(other)
    with pytest.raises(UnsupportedFormat, match="levels"):
        codec.encode({}, compression="zstd", level=99)
    with pytest.raises(UnsupportedFormat):
        codec.encode({1, 2})


def test_decompression_bombs_are_refused() -> None:
    bomb = Codec(format="raw", compression="zstd", max_size=100 * 1024 * 1024).encode(
        b"\x00" * 50_000_000
    )
    assert len(bomb) < 10_000
    with pytest.raises(PayloadTooLarge):
        Codec(max_size=1024 * 1024).decode(bomb)
    # A header that lies about the size is caught after at most that many bytes.
    liar = bytearray(bomb)
    liar[12:16] = struct.pack(">I", 1000)
    liar[16:20] = struct.pack(">I", zlib.crc32(bytes(liar[20:])))
    with pytest.raises(DataCorrupted, match="header says 1000"):
        Codec().decode(bytes(liar))
    with pytest.raises(PayloadTooLarge):
        Codec(max_size=1000).encode("x" * 2000)


@settings(max_examples=300)
@given(data=st.binary(max_size=300))
def test_fuzzed_blobs_give_only_typed_errors(data: bytes) -> None:
    codec = Codec(secret=SECRET)
    for blob in (data, b"\x89LMC\x01" + data):
        with contextlib.suppress(LoremasterError):
            codec.decode(blob)


@settings(max_examples=300)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.integers(0, 10_000))
def test_mutated_blobs_give_only_typed_errors(position: int, value: int, cut: int) -> None:
    codec = Codec(secret=SECRET, checksum=False)
    for compression in Compression:
        blob = bytearray(
            codec.encode({"story": "the dragon wakes " * 30, "n": 5}, compression=compression)
        )
        blob[position % len(blob)] = value
        for candidate in (bytes(blob), bytes(blob[: cut % len(blob)])):
            with contextlib.suppress(LoremasterError):
                codec.decode(candidate)


def _dictionary() -> bytes:
    samples = [
        Message(role="assistant", content=f"The party rests at the inn, round {n}. The bard sings.")
        .model_dump_json()
        .encode()
        for n in range(300)
    ]
    return train_dictionary(samples, size=4096)


def test_a_trained_dictionary_shrinks_small_payloads() -> None:
    dictionary = _dictionary()
    codec = Codec(format="raw", dictionaries={1: dictionary}, dictionary_for={"conversation": 1})
    sample = Message(
        role="assistant", content="The party rests at the inn. The bard sings of dragons."
    )
    payload = sample.model_dump_json().encode()
    with_dictionary = codec.encode(payload, kind="conversation")
    without = codec.encode(payload, compression="zstd")
    assert inspect_blob(with_dictionary).dictionary_id == 1
    assert len(with_dictionary) < len(without)
    assert codec.decode(with_dictionary) == payload


async def test_async_and_batches() -> None:
    codec = Codec()
    big = {"log": ["the dragon stirs"] * 20_000}
    assert await codec.decode_async(await codec.encode_async(big)) == big
    small = [{"n": n} for n in range(10)]
    assert codec.decode_many(codec.encode_many(small)) == small
    results = await asyncio.gather(*(codec.encode_async(big) for _ in range(4)))
    assert all(codec.decode(blob) == big for blob in results)


def test_stats_count_bytes_per_algorithm() -> None:
    codec = Codec(format="raw")
    codec.decode(codec.encode(b"gold " * 10_000))
    codec.encode(b"x")
    stats = codec.stats()
    assert stats["zstd"]["encoded"] == 1
    assert stats["zstd"]["decoded"] == 1
    assert stats["zstd"]["ratio"] < 0.05
    assert stats["none"]["encoded"] == 1
