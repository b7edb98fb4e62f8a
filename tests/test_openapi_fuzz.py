"""Schemathesis against the real server's ``/openapi.json``: every documented operation, anonymous
and signed in, checked for server errors, answers outside the documented schema, undocumented
status codes and content types.

Bounded to about a minute on two cores: few examples per operation, generation only (no
shrinking or replay), and no deadline (the machine is shared; speed is not what is tested).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.live import LiveServer, live_server

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]
MAX_EXAMPLES = 16
# Nothing is left out: the signed-in passes use API tokens, which no fuzzed call can end
# (logout ends a browser's cookie session only, and there is no route that revokes a token).
# Add (METHOD, path) here only for a route that would end the fuzzing session itself.
EXCLUDED: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("fuzz")) as s:
        yield s


def api_token(server: LiveServer, role: str) -> str:
    """A personal API token of a demo account, made the way a court's system makes one."""
    email, password = server.logins[role]
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.post("/api/v1/auth/login", json={"email": email, "password": password}
                    ).raise_for_status()
        created = client.post("/api/v1/tokens", json={"name": "fuzz"})
        created.raise_for_status()
        token: str = created.json()["token"]
        return token


@dataclass
class Findings:
    """Failed checks counted by check title, operation and status, with the first example."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, failure: Failure, label: str, case: Any, response: Any) -> None:
        what = f"{failure.title} | {label} | {response.status_code}"
        body = response.content.decode(errors="replace")  # a PDF is not text
        self.examples.setdefault(what, f"sent {case.body!r:.150} got {body:.150}")
        self.counts[what] += 1

    def report(self) -> str:
        by_kind = Counter(what.split(" | ")[0] for what in self.counts.elements())
        lines = [f"{n:4} x {what}\n       {self.examples[what]}"
                 for what, n in sorted(self.counts.items())]
        return "\n".join([str(dict(by_kind)), *lines])


def fuzz(schema: Any, base_url: str, headers: dict[str, str], findings: Findings) -> None:
    """Every operation's generated requests, valid and not (a fixed seed: reproducible)."""
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in EXCLUDED:
            examples(operation, base_url, headers, findings)()


def examples(operation: Any, base_url: str, headers: dict[str, str],
             findings: Findings) -> Callable[[], None]:
    """One operation's examples; failures are collected, not raised (so nothing shrinks)."""

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=True)
    @given(case=operation.as_strategy(GenerationMode.POSITIVE)
           | operation.as_strategy(GenerationMode.NEGATIVE))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.add(failure, operation.label, case, response)

    return run


def test_the_api_keeps_to_its_schema(server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    # Signed in as a mediator (cases, drafts, agreements) and an administrator (the register);
    # the tokens are made first, as the fuzzed logins soon lock this address out (429).
    signed_in = [{"Authorization": f"Bearer {api_token(server, role)}"}
                 for role in ("mediator", "administrator")]
    findings = Findings()
    for headers in [{}, *signed_in]:
        fuzz(schema, server.url, headers, findings)
    assert not findings.counts, findings.report()


def test_the_fuzzing_ran_on_every_operation(server: LiveServer) -> None:
    """The schema lists the API (not an empty or broken document that would pass trivially)."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 40
