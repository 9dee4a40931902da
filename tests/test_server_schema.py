"""schemathesis against the OpenAPI document of a real `loremaster serve` process: every
operation, with requests generated from its schema (valid and not), never answers 500 and
never answers what its schema does not declare. Some of the cases aim at contexts that
exist (a conversation with a version and a branch, a room), to get past the 404."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from _server import ServerProcess
from loremaster.manager import ContextManager
from loremaster.server import create_app

EXAMPLES_PER_STRATEGY = 15
CHECKS = [
    negative_data_rejection,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def operations() -> list[tuple[str, str]]:
    """Every (method, path) the application documents (collected without a server; the
    test below checks the served document has the same)."""
    document = create_app(ContextManager("sqlite:///never-opened.db")).openapi()
    return [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]


OPERATIONS = operations()


TOKEN = "schema-key"
AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with one user (so that locks, seats and presence are that user's)."""
    workdir: Path = tmp_path_factory.mktemp("schema")
    process = ServerProcess(workdir, {"LOREMASTER_API_KEYS": f"{TOKEN}=fuzzer"}).start()
    yield process
    process.stop()


@pytest.fixture
def known(api_server: ServerProcess) -> list[dict[str, str]]:
    """Path parameters that name things that exist (made for each operation, since the
    last one may have changed them): a conversation with a version, a branch and a
    conflict waiting; a room."""
    with httpx.Client(base_url=api_server.url, headers=AUTHORIZATION, timeout=10) as http:
        body = {
            "context_type": "conversation",
            "title": "Seeded",
            "data": {"hp": 10},
            "messages": [{"role": "user", "content": "Hello"}],
        }
        conversation = http.post("/v1/contexts", json=body).json()["context_id"]
        base = f"/v1/contexts/{conversation}"
        version = http.post(f"{base}/versions", json={"tags": ["seed"]}).json()["version_id"]
        http.post(f"{base}/branches", json={"name": "side"})
        http.patch(base, json={"data": {"hp": 5}})
        http.patch(
            base,
            params={"strategy": "manual_merge"},
            json={"data": {"hp": 1}},
            headers={"If-Match": '"1"'},
        )
        conflict = http.get(f"{base}/conflicts").json()[0]["conflict_id"]
        room = {"context_type": "collaborative", "title": "Room"}
        room_id = http.post("/v1/contexts", json=room).json()["context_id"]
    return [
        {
            "context_id": conversation,
            "version_id": version,
            "name": "side",
            "conflict_id": conflict,
        },
        {"context_id": room_id},
    ]


@pytest.fixture(scope="module")
def api_schema(api_server: ServerProcess) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")


def test_the_served_document_has_every_operation(api_schema: OpenApiSchema) -> None:
    served = [
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    ]
    assert sorted(served) == sorted(OPERATIONS)


def cases(
    operation: Any, known: list[dict[str, str]]
) -> list[tuple[GenerationMode, st.SearchStrategy[Any]]]:
    """Valid and invalid requests, and valid ones about things that exist (except
    deleting those: the other operations need them)."""
    strategies = [(mode, operation.as_strategy(mode)) for mode in GenerationMode]
    names = {parameter.name for parameter in operation.path_parameters}
    if operation.method.upper() != "DELETE" or operation.path != "/v1/contexts/{context_id}":
        for things in known:
            aimed = {name: value for name, value in things.items() if name in names}
            if aimed:
                positive = GenerationMode.POSITIVE
                strategies.append(
                    (positive, operation.as_strategy(positive, path_parameters=aimed))
                )
    return strategies


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_answers_as_documented(
    api_schema: OpenApiSchema,
    api_server: ServerProcess,
    known: list[dict[str, str]],
    method: str,
    path: str,
) -> None:
    operation = api_schema[path][method]
    for mode, strategy in cases(operation, known):

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES_PER_STRATEGY,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def answers_as_documented(case: Any) -> None:
            case.call_and_validate(base_url=api_server.url, headers=AUTHORIZATION, checks=CHECKS)

        try:
            answers_as_documented()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise  # else nothing the operation takes can be invalid
