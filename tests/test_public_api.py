from __future__ import annotations

import inspect

import loremaster
from loremaster import errors


def test_all_is_sorted_complete_and_importable() -> None:
    assert loremaster.__all__ == sorted(loremaster.__all__, key=lambda n: (n.startswith("_"), n))
    for name in loremaster.__all__:
        assert hasattr(loremaster, name), name
    required = {
        "ContextManager",
        "Context",
        "ConversationContext",
        "SessionContext",
        "CollaborativeContext",
        "ContextType",
        "ContextState",
        "ContextQuery",
        "Message",
        "ProviderType",
    }
    assert required <= set(loremaster.__all__)


def test_every_error_is_exported_and_in_the_tree() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors.__name__
    ]
    for cls in classes:
        assert cls.__name__ in loremaster.__all__, cls
        assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} missing from the tree"
    runtime = [c for c in classes if issubclass(c, loremaster.LoremasterError)]
    assert {c.__name__ for c in runtime} >= {
        "ContextNotFound",
        "PermissionDenied",
        "RevisionConflict",
        "LockHeld",
        "ValidationFailed",
        "PayloadTooLarge",
        "UnsupportedFormat",
        "BackendUnavailable",
    }
    assert not issubclass(loremaster.NotInitialized, loremaster.LoremasterError)


def test_public_manager_methods_are_documented() -> None:
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "library.md").read_text()
    for name, member in inspect.getmembers(loremaster.ContextManager, inspect.iscoroutinefunction):
        if not name.startswith("_"):
            assert member.__doc__, f"{name} has no docstring"
            assert f"{name}(" in docs, f"{name} is not in docs/library.md"
