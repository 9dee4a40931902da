"""`loremaster demo`: a small D&D campaign, built through the library and shown.

The campaign is made once per database: run again, the demo finds it and shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DEFAULT_DATABASE_URL
from ..manager import ContextManager
from ..models import (
    CollaborativeContext,
    ContextType,
    ConversationContext,
    Message,
    SessionContext,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from . import _render

__all__ = ["DemoCampaign", "find_demo", "run_demo", "seed_demo"]

GM = "dm"
PLAYERS = ("player1", "player2")
CAMPAIGN = "red-dragon"
CONVERSATION_TITLE = "Curse of the Red Dragon — session 1"
SESSION_TITLE = "player1 at the table"
ROOM_TITLE = "Party planning"


@dataclass(frozen=True)
class DemoCampaign:
    """The demo's three contexts, and whether this run created them."""

    conversation_id: str
    session_id: str
    room_id: str
    created: bool


def _opening() -> list[Message]:
    return [
        Message(role="system", parts=[TextPart(text="You are a helpful D&D game master.")]),
        Message(role="user", parts=[TextPart(text="We enter the dragon's lair. I roll stealth.")]),
        Message(
            role="assistant",
            parts=[
                TextPart(text="Roll a d20 and add your Dexterity modifier."),
                ToolCallPart(id="roll-1", name="roll_dice", arguments={"dice": "1d20+3"}),
            ],
        ),
        Message(role="tool", parts=[ToolResultPart(call_id="roll-1", content="17")]),
        Message(
            role="assistant",
            parts=[TextPart(text="17: you slip past the sleeping red dragon unseen.")],
        ),
    ]


async def find_demo(cm: ContextManager) -> DemoCampaign | None:
    """The demo campaign if this database holds it (the first made, if several)."""
    page = await cm.query_contexts(
        metadata_match={"campaign": CAMPAIGN}, order_by="created_at", descending=False, limit=100
    )
    found: dict[tuple[str, str], str] = {}
    for context in page:
        found.setdefault((context.context_type.value, context.title), context.context_id)
    ids = [
        found.get((ContextType.CONVERSATION.value, CONVERSATION_TITLE)),
        found.get((ContextType.SESSION.value, SESSION_TITLE)),
        found.get((ContextType.COLLABORATIVE.value, ROOM_TITLE)),
    ]
    if None in ids:
        return None
    conversation_id, session_id, room_id = (str(i) for i in ids)
    return DemoCampaign(conversation_id, session_id, room_id, created=False)


async def seed_demo(cm: ContextManager) -> DemoCampaign:
    """The demo campaign: found if the database holds it, else created. Running it
    again (`make run` twice, a server started with the demo) adds nothing."""
    existing = await find_demo(cm)
    if existing is not None:
        return existing
    conversation_id = await cm.create_context(
        ConversationContext(
            title=CONVERSATION_TITLE,
            description="The party reaches the dragon's lair.",
            collaborators=list(PLAYERS),
            messages=_opening(),
            primary_provider="anthropic",
            model_parameters={"temperature": 0.7},
            metadata={"campaign": "red-dragon", "session": 1},
        ),
        user_id=GM,
    )
    await cm.append_messages(
        conversation_id,
        {"role": "user", "content": "I look for the dragon's hoard."},
        user_id=PLAYERS[0],
    )
    session_id = await cm.create_context(
        SessionContext(
            title=SESSION_TITLE,
            user_id=PLAYERS[0],
            active_conversations=[conversation_id],
            preferences={"dice_animation": True},
            metadata={"campaign": "red-dragon"},
        ),
        user_id=PLAYERS[0],
    )
    room_id = await cm.create_context(
        CollaborativeContext(
            title=ROOM_TITLE,
            room_id="room_abc123",
            collaborators=list(PLAYERS),
            active_participants=[GM, *PLAYERS],
            metadata={"campaign": "red-dragon"},
        ),
        user_id=GM,
    )
    await cm.update_context(room_id, {"shared_state": {"quest": "Dragon's Lair"}}, user_id=GM)
    await cm.update_context(
        room_id, {"shared_state": {"level": 5}}, user_id=PLAYERS[1], expected_revision=2
    )
    # Versions like git: a checkpoint, a "what if" branch from it, both futures kept.
    checkpoint = await cm.create_version(conversation_id, GM, "At the lair's mouth", ["checkpoint"])
    await cm.create_branch(conversation_id, "sneak-in", checkpoint.version_id, GM)
    await cm.append_messages(
        conversation_id,
        {"role": "user", "content": "We sneak in through the flooded tunnel."},
        user_id=PLAYERS[1],
        branch="sneak-in",
    )
    await cm.append_messages(
        conversation_id, {"role": "user", "content": "We charge the front gate!"}, PLAYERS[0]
    )
    return DemoCampaign(conversation_id, session_id, room_id, created=True)


async def run_demo(cm: ContextManager, *, as_json: bool) -> None:
    """Create the demo campaign (or find it, made before) and show it."""
    campaign = await seed_demo(cm)
    conversation_id, room_id = campaign.conversation_id, campaign.room_id
    history = await cm.get_version_history(conversation_id, GM, limit=5)
    conversation = await cm.get_context(conversation_id, user_id=PLAYERS[1])
    session = await cm.get_context(campaign.session_id, user_id=PLAYERS[0])
    room = await cm.get_context(room_id, user_id=GM)
    hits = await cm.search_contexts("dragon hoard", user_id=PLAYERS[0])
    events = await cm.get_events(room_id, user_id=GM)

    if as_json:
        _render.print_json(
            {
                "created": campaign.created,
                "conversation": conversation.model_dump(mode="json"),
                "session": session.model_dump(mode="json"),
                "room": room.model_dump(mode="json"),
                "search": [hit.model_dump(mode="json") for hit in hits],
                "room_events": [event.model_dump(mode="json") for event in events],
                "history": [version.model_dump(mode="json") for version in history],
            }
        )
        return
    _render.console.rule("[bold]loremaster demo: a D&D campaign[/bold]")
    title = "Created" if campaign.created else "Already here (made by an earlier demo)"
    _render.show_contexts([conversation, session, room], title=title)
    _render.show_context(conversation)
    _render.show_mapping("Shared state of the party room", room.model_dump()["shared_state"])
    _render.show_events(events)
    _render.show_history(history)
    _render.show_hits(hits)
    where = cm.settings.database_url
    option = "" if where == DEFAULT_DATABASE_URL else f" --database-url {where}"
    _render.console.print(
        f"Stored in {where}. Try: loremaster show {conversation_id}{option}\n"
        f"     and: loremaster branch list {conversation_id}{option}",
        soft_wrap=True,
    )
