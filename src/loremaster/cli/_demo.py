"""`loremaster demo`: a small D&D campaign, built through the library and shown."""

from __future__ import annotations

from ..config import DEFAULT_DATABASE_URL
from ..manager import ContextManager
from ..models import (
    CollaborativeContext,
    ConversationContext,
    Message,
    SessionContext,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from . import _render

__all__ = ["run_demo"]

GM = "dm"
PLAYERS = ("player1", "player2")


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


async def run_demo(cm: ContextManager, *, as_json: bool) -> None:
    conversation_id = await cm.create_context(
        ConversationContext(
            title="Curse of the Red Dragon — session 1",
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
            title="player1 at the table",
            user_id=PLAYERS[0],
            active_conversations=[conversation_id],
            preferences={"dice_animation": True},
            metadata={"campaign": "red-dragon"},
        ),
        user_id=PLAYERS[0],
    )
    room_id = await cm.create_context(
        CollaborativeContext(
            title="Party planning",
            room_id="room_abc123",
            collaborators=list(PLAYERS),
            active_participants=[GM, *PLAYERS],
            metadata={"campaign": "red-dragon"},
        ),
        user_id=GM,
    )
    await cm.update_context(room_id, {"shared_state": {"quest": "Dragon's Lair"}}, user_id=GM)
    room = await cm.update_context(
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
    history = await cm.get_version_history(conversation_id, GM, limit=5)
    conversation = await cm.get_context(conversation_id, user_id=PLAYERS[1])
    session = await cm.get_context(session_id, user_id=PLAYERS[0])
    hits = await cm.search_contexts("dragon hoard", user_id=PLAYERS[0])
    events = await cm.get_events(room_id, user_id=GM)

    if as_json:
        _render.print_json(
            {
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
    _render.show_contexts([conversation, session, room], title="Created")
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
