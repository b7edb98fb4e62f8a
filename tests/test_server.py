"""The real server: ``odr run`` on a free port, with its demo, spoken to over real HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

from tests.harness import FAST_HASHING
from tests.live import free_port

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
ODR = Path(sys.executable).with_name("odr")
DEMO_LINE = re.compile(r"^\s+(?P<label>\S.*?)\s+(?P<email>\S+@demo\.odr)\s+(?P<password>\S+)$")

# DESIGN.md section 8: the accounts and cases API that exists so far, with its methods.
DOCUMENTED = {
    "/api/v1/auth/register": {"post"},
    "/api/v1/auth/register/confirm": {"post"},
    "/api/v1/auth/password-reset": {"post"},
    "/api/v1/auth/password-reset/confirm": {"post"},
    "/api/v1/auth/login": {"post"},
    "/api/v1/auth/logout": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/tokens": {"post"},
    "/api/v1/mediators": {"get"},
    "/api/v1/cases": {"get", "post"},
    "/api/v1/cases/{case_id}": {"get"},
    "/api/v1/cases/{case_id}/events": {"get"},
    "/api/v1/cases/{case_id}/invitations": {"post"},
    "/api/v1/invitations/{token}/accept": {"post"},
    "/api/v1/cases/{case_id}/accept": {"post"},
    "/api/v1/cases/{case_id}/consent": {"post"},
    "/api/v1/cases/{case_id}/sessions": {"post"},
    "/healthz": {"get"},
}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if pattern in line), None)

        with self._changed:
            ok = self._changed.wait_for(
                lambda: found() is not None or self.process.poll() is not None, timeout)
            line = found()
        assert ok and line is not None, f"no {pattern!r} in the output:\n" + "\n".join(self.lines)
        return line

    def demo_logins(self) -> dict[str, tuple[str, str]]:
        """``{label: (email, password)}`` as printed once at the first start."""
        logins = {}
        for line in self.lines:
            if match := DEMO_LINE.match(line):
                logins[match["label"]] = (match["email"], match["password"])
        return logins


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODR_")}
    env.update({
        "ODR_DATA_DIR": str(data_dir),
        "ODR_PUBLIC_URL": url,
        "PYTHONUNBUFFERED": "1",
        **{f"ODR_{k.upper()}": str(v) for k, v in FAST_HASHING.items()},
    })
    command = [str(ODR)] if ODR.exists() else [sys.executable, "-m", "odr.cli"]
    process = subprocess.Popen(
        [*command, "run", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    running = Server(url, process)
    reader = threading.Thread(target=running.read_output, daemon=True)
    reader.start()
    try:
        # uvicorn says so once its socket listens.
        running.wait_for_line(f"Uvicorn running on {url}", START_TIMEOUT)
        assert httpx2.get(f"{url}/healthz", timeout=10.0).json() == {"status": "ok"}
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        reader.join(timeout=STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()


def test_demo_accounts_are_printed_once(server: Server) -> None:
    logins = server.demo_logins()
    assert set(logins) == {"administrator", "mediator", "party A", "party B", "court clerk"}
    assert all(len(password) >= 8 for _email, password in logins.values())
    assert f"Serving on {server.url}" in server.lines


def test_sign_in_and_see_the_demo_case(server: Server) -> None:
    email, password = server.demo_logins()["party A"]
    with httpx2.Client(base_url=server.url, timeout=10.0) as client:
        signed_in = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["email"] == email
        assert "httponly" in signed_in.headers["set-cookie"].lower()

        cases = client.get("/api/v1/cases")
        assert cases.status_code == 200
        [case] = cases.json()
        assert case["status"] == "accepted"
        assert case["requester_id"] == signed_in.json()["id"]
        assert sorted(p["role"] for p in case["participants"]) == ["mediator", "party", "party"]

        sessions = client.get(f"/api/v1/cases/{case['id']}/sessions")
        assert sessions.status_code == 200 and len(sessions.json()) == 1

        wrong = client.post("/api/v1/auth/login", json={"email": email, "password": "nope"},
                            headers={"accept-language": "en"})
        assert wrong.status_code == 401


def test_openapi_documents_the_public_interfaces(server: Server) -> None:
    with httpx2.Client(base_url=server.url, timeout=10.0) as client:
        schema = client.get("/openapi.json").json()
    paths: dict[str, dict[str, object]] = schema["paths"]
    missing = {path: methods - set(paths.get(path, {}))
               for path, methods in DOCUMENTED.items()
               if methods - set(paths.get(path, {}))}
    assert not missing
    # Every documented operation says what it does.
    for path in DOCUMENTED:
        for method, operation in paths[path].items():
            assert isinstance(operation, dict) and operation.get("summary"), (method, path)
