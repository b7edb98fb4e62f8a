"""Draft server benchmark: our ``/ws/drafts/{id}`` against Node's ``@y/websocket-server``.

The same load runs against both servers, side by side in one run, on loopback: ROOMS rooms of
CLIENTS clients each, one writer per room sending real Yjs updates (made by pycrdt: a few
characters inserted into an XmlText inside the XmlFragment "default") at RATE updates/s per room;
the other clients read. Printed per server, deflate mode and rate (medians over RUNS runs):

- update latency p50/p95/p99: the writer sends an update -> each reader receives it;
- server CPU per update: the server process's user+sys CPU time (/proc/<pid>/stat) from the
  start of the timed phase until every reader has every update, divided by the updates sent;
- server CPU as a fraction of one core during the timed sending phase.

The clients are one Node process (bench/load_client.mjs, `ws` with raw y-websocket frames, no
Yjs), so they cost little next to the server. Run ``.venv/bin/python bench/drafts_bench.py -h``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_SERVER = BENCH / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
CLIENT = BENCH / "load_client.mjs"


# --- Updates --------------------------------------------------------------------------------


def make_frames(count: int, path: Path) -> None:
    """Write COUNT y-websocket Update frames; frame i inserts "@" + i in 8 digits + " "."""
    from pycrdt import Doc, XmlFragment, XmlText

    doc: Doc[Any] = Doc()
    fragment = doc.get("default", type=XmlFragment)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text: XmlText | None = None
    for i in range(count):
        with doc.transaction():
            if text is None:
                text = fragment.children.append(XmlText())
            text.insert(len(text), f"@{i:08d} ")
    with path.open("wb") as out:
        for update in updates:
            frame = b"\x00\x02" + varuint(len(update)) + update  # sync, update, payload
            out.write(struct.pack("<I", len(frame)) + frame)


def varuint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


# --- Processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User+sys CPU time of a whole process (all threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quiesce(servers: list[Server], *, below: float = 0.03, most: float = 15.0) -> None:
    """Wait until the servers are idle (work left from the previous run must not be counted)."""
    deadline = time.monotonic() + most
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(s.pid) for s in servers)
        time.sleep(0.5)
        if sum(cpu_seconds(s.pid) for s in servers) - before <= below * 0.5:
            return


@dataclass
class Server:
    """A running server under test: where its rooms are and how to reach them."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rooms(self, count: int, tag: str) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        stop(self.proc)


class NodeServer(Server):
    @classmethod
    def start(cls, work: Path, *, leveldb: bool = False) -> NodeServer:
        """The reference server; with ``leveldb``, in its own persistent mode (``YPERSISTENCE``:
        every update is handed to LevelDB through y-leveldb, asynchronously: it forwards
        without waiting for the write, and LevelDB does not sync to disk)."""
        port = free_port()
        name = "node-ldb" if leveldb else "node"
        log = work / f"{name}-{port}.log"
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        if leveldb:
            env["YPERSISTENCE"] = str(work / f"leveldb-{port}")
        proc = subprocess.Popen(["node", str(NODE_SERVER)], cwd=BENCH, env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
        wait_port(port, proc, log)
        return cls(name, proc, port, log)

    def rooms(self, count: int, tag: str) -> list[str]:
        return [f"ws://127.0.0.1:{self.port}/bench-{tag}-{i}" for i in range(count)]


class OdrServer(Server):
    """Our app under uvicorn; the data folder is prepared once (migrate, demo) and reused."""

    @staticmethod
    def prepare(data: Path, extra_env: dict[str, str] | None = None
                ) -> dict[str, tuple[str, str]]:
        """Migrate and create the demo; its logins by label ("mediator", "party B", ...)."""
        env = {**os.environ, "ODR_DATA_DIR": str(data), **(extra_env or {})}
        odr = [sys.executable, "-m", "odr.cli"]
        subprocess.run([*odr, "migrate"], env=env, check=True, cwd=ROOT, capture_output=True)
        out = subprocess.run([*odr, "demo"], env=env, check=True, cwd=ROOT,
                             capture_output=True, text=True).stdout
        logins = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
            r"^\s{2}(\S+(?: \S+)?)\s+(\S+@\S+)\s+(\S+)\s*$", out, re.MULTILINE)}
        if "mediator" not in logins:
            raise RuntimeError(f"no mediator in the demo output:\n{out}")
        return logins

    @classmethod
    def start(cls, work: Path, data: Path, logins: dict[str, tuple[str, str]], *,
              deflate: bool, ws: str, app: str, extra_env: dict[str, str] | None = None
              ) -> OdrServer:
        port = free_port()
        log = work / f"odr-{port}.log"
        env = {**os.environ, "ODR_DATA_DIR": str(data),
               "ODR_PUBLIC_URL": f"http://127.0.0.1:{port}", **(extra_env or {})}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", app,
             "--host", "127.0.0.1", "--port", str(port), "--ws", ws,
             "--ws-per-message-deflate", "true" if deflate else "false",
             "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )
        wait_port(port, proc, log)
        server = cls("odr", proc, port, log)
        try:
            consented = data / "bench-consented"
            if not consented.exists() and "party B" in logins:
                # The demo case waits for party B's consent; drafts need it.
                server.login(logins["party B"])
                status, _, body = server.http("POST", "/api/v1/cases/1/consent")
                if status != 200:
                    raise RuntimeError(f"party B's consent failed: HTTP {status} {body}")
                consented.touch()
            server.login(logins["mediator"])
        except Exception:
            server.close()
            raise
        return server

    def login(self, account: tuple[str, str]) -> None:
        self.headers = {}
        status, headers, _ = self.http("POST", "/api/v1/auth/login",
                                       {"email": account[0], "password": account[1]})
        cookie = next((v.split(";")[0] for k, v in headers if k.lower() == "set-cookie"
                       and v.startswith("odr_session=")), None)
        if status != 200 or cookie is None:
            raise RuntimeError(f"login as {account[0]} failed: HTTP {status}")
        self.headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{self.port}"}

    def http(self, method: str, path: str, body: Any = None
             ) -> tuple[int, list[tuple[str, str]], Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, response.getheaders(), json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, list(exc.headers.items()), exc.read().decode(errors="replace")

    def rooms(self, count: int, tag: str) -> list[str]:
        urls = []
        for _ in range(count):
            status, _, body = self.http("POST", "/api/v1/cases/1/drafts",
                                        {"language": "ru", "template": "default"})
            if status not in (200, 201):
                raise RuntimeError(f"creating a draft failed: HTTP {status} {body}")
            urls.append(f"ws://127.0.0.1:{self.port}/ws/drafts/{body['id']}")
        return urls


# --- One run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    rooms: int
    clients: int
    warmup: float
    duration: float
    drain: float


def run_load(server: Server, load: Load, rate: int, deflate: bool, frames: Path,
             tag: str) -> dict[str, Any]:
    config = {
        "rooms": server.rooms(load.rooms, tag), "clients": load.clients, "rate": rate,
        "warmup": load.warmup, "duration": load.duration, "drain": load.drain,
        "deflate": deflate, "headers": server.headers, "pid": server.pid, "frames": str(frames),
    }
    timeout = load.warmup + load.duration + load.drain + 120
    done = subprocess.run(["node", str(CLIENT)], input=json.dumps(config), text=True,
                          capture_output=True, timeout=timeout, cwd=BENCH)
    if done.returncode != 0:
        raise RuntimeError(f"load client failed against {server.name}:\n{done.stderr[-3000:]}"
                           f"\nserver log:\n{server.log.read_text()[-3000:]}")
    if done.stderr.strip():
        print(f"    [{server.name}] {done.stderr.strip()[:500]}", file=sys.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    result["cpu_per_update_us"] = result["server_cpu_total"] / result["updates_sent"] * 1e6
    result["sys_per_update_us"] = result["server_sys_total"] / result["updates_sent"] * 1e6
    result["server_cores"] = result["server_cpu_send"] / result["send_seconds"]
    result["client_cores"] = result["client_cpu"] / (result["send_seconds"]
                                                     + result["drain_seconds"])
    result["delivered"] = result["deliveries"] / result["deliveries_expected"]
    return result


# --- Profile ---------------------------------------------------------------------------------


@contextlib.contextmanager
def py_spy(pid: int, out: Path, seconds: float) -> Iterator[None]:
    """Sample PID with py-spy (raw collapsed stacks) while the block runs."""
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                             "--rate", "200", "--format", "raw", "--nonblocking", "--gil",
                             "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1)
    try:
        yield
    finally:
        try:
            proc.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summarise_profile(path: Path, top: int) -> str:
    """Top functions by own samples and by inclusive samples, from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = [shorten(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for name in set(frames):
            incl[name] += count
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples of the thread holding the GIL (uvloop's C code shows as"
             " Runner.run)",
             "  own time:"]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive time:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in incl.most_common(top)]
    return "\n".join(lines)


def shorten(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    m = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not m:
        return frame
    path = m.group(2)
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        with contextlib.suppress(ValueError):
            path = str(Path(path).relative_to(ROOT))
    return f"{m.group(1)} ({path})"


# --- Report ---------------------------------------------------------------------------------

COLUMNS = [
    ("p50 ms", "p50", "{:.2f}"), ("p95 ms", "p95", "{:.2f}"), ("p99 ms", "p99", "{:.2f}"),
    ("CPU/upd us", "cpu_per_update_us", "{:.0f}"), ("of it sys", "sys_per_update_us", "{:.0f}"),
    ("srv cores", "server_cores", "{:.2f}"),
    ("cli cores", "client_cores", "{:.2f}"), ("delivered", "delivered", "{:.4f}"),
]


def median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def table(results: dict[tuple[str, bool, int], list[dict[str, Any]]]) -> str:
    head = f"{'server':<8} {'deflate':<8} {'upd/s/room':>10} {'runs':>4}" + "".join(
        f" {title:>10}" for title, _, _ in COLUMNS) + "  p99 of runs"
    lines = [head, "-" * len(head)]
    for (name, deflate, rate), runs in sorted(results.items(), key=lambda kv: (
            kv[0][2], kv[0][1], kv[0][0] != "odr")):
        negotiated = {r["extensions"] for r in runs}
        mode = ("on" if any(negotiated) else "declined") if deflate else "off"
        cells = []
        for _, key, fmt in COLUMNS:
            value = median(runs, key)
            cells.append(f" {'-' if value is None else fmt.format(value):>10}")
        spread = ",".join("-" if r["p99"] is None else f"{r['p99']:.1f}" for r in runs)
        lines.append(f"{name:<8} {mode:<8} {rate:>10} {len(runs):>4}" + "".join(cells)
                     + f"  {spread}")
    return "\n".join(lines)


# --- Main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default="odr,node,node-ldb",
                   help="comma-separated: odr, node (the reference), node-ldb (the reference"
                        " persisting to LevelDB)")
    p.add_argument("--rates", default="50,200", help="updates per second per room")
    p.add_argument("--deflate", default="off,on", help="permessage-deflate modes: off, on")
    p.add_argument("--runs", type=int, default=3, help="runs per configuration (medians)")
    p.add_argument("--rooms", type=int, default=10)
    p.add_argument("--clients", type=int, default=5, help="clients per room (one writes)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before timing")
    p.add_argument("--duration", type=float, default=10.0, help="timed seconds per run")
    p.add_argument("--drain", type=float, default=10.0,
                   help="most seconds to wait for late deliveries after sending stops")
    p.add_argument("--server-warmup", type=float, default=5.0,
                   help="seconds of load at the highest rate after each server starts, not measured"
                        " (Node's JIT needs it)")
    p.add_argument("--ws", default="auto", help="uvicorn --ws implementation for our server")
    p.add_argument("--app", default="odr.app:app_from_environment",
                   help="uvicorn factory for our server (to try a variant of the app)")
    p.add_argument("--profile", action="store_true",
                   help="after measuring, profile our server with py-spy at the highest rate")
    p.add_argument("--json", type=Path, help="also write every run's figures here")
    args = p.parse_args(argv)

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    rates = [int(r) for r in args.rates.split(",")]
    modes = [m.strip() == "on" for m in args.deflate.split(",")]
    load = Load(args.rooms, args.clients, args.warmup, args.duration, args.drain)

    if not NODE_SERVER.exists() or not (BENCH / "node_modules" / "y-leveldb").exists():
        print("Installing the Node reference server and client (npm ci in bench/)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, check=True)

    work = Path(tempfile.mkdtemp(prefix="drafts-bench-"))
    frames = work / "frames.bin"
    make_frames(int(max(rates) * (load.warmup + load.duration)) + 10, frames)
    logins: dict[str, tuple[str, str]] = {}
    if "odr" in servers:
        logins = OdrServer.prepare(work / "data")

    print(f"Load: {load.rooms} rooms x {load.clients} clients (1 writer), warm-up {load.warmup} s,"
          f" timed {load.duration} s, {args.runs} runs per configuration; {os.cpu_count()} cores;"
          f" load average {os.getloadavg()[0]:.2f}")
    results: dict[tuple[str, bool, int], list[dict[str, Any]]] = collections.defaultdict(list)
    profiles: list[str] = []
    try:
        for deflate in modes:
            running: list[Server] = []
            try:
                for name in servers:
                    if name in ("node", "node-ldb"):
                        running.append(NodeServer.start(work, leveldb=name == "node-ldb"))
                    else:
                        running.append(OdrServer.start(work, work / "data", logins,
                                                       deflate=deflate, ws=args.ws, app=args.app))
                if args.server_warmup > 0:
                    warm = Load(load.rooms, load.clients, 0.5, args.server_warmup, load.drain)
                    for server in running:
                        run_load(server, warm, max(rates), deflate, frames,
                                 f"warm{'d' if deflate else 'p'}")
                for rate in rates:
                    for run in range(args.runs):
                        # Alternate the order so background load falls on both alike.
                        order = running if run % 2 == 0 else running[::-1]
                        for server in order:
                            quiesce(running)
                            tag = f"{'d' if deflate else 'p'}{rate}r{run}"
                            r = run_load(server, load, rate, deflate, frames, tag)
                            results[(server.name, deflate, rate)].append(r)
                            print(f"  {server.name:<8} deflate={'on' if deflate else 'off':<3}"
                                  f" {rate:>4}/s run {run + 1}: p50 {r['p50']:.2f} p99"
                                  f" {r['p99']:.2f} ms, {r['cpu_per_update_us']:.0f} us/update,"
                                  f" server {r['server_cores']:.2f} cores, clients"
                                  f" {r['client_cores']:.2f}, delivered {r['delivered']:.4f}"
                                  f" [{r['extensions'] or 'no extension'}]", flush=True)
                if args.profile:
                    for server in running:
                        if server.name != "odr":
                            continue
                        rate = max(rates)
                        quiesce(running)
                        out = work / f"profile-{'deflate' if deflate else 'plain'}-{rate}.txt"
                        with py_spy(server.pid, out, load.warmup + load.duration + 3):
                            run_load(server, load, rate, deflate, frames,
                                     f"prof{'d' if deflate else 'p'}")
                        profiles.append(f"Profile of our server, deflate "
                                        f"{'on' if deflate else 'off'}, {rate}/s per room "
                                        f"({out}):\n{summarise_profile(out, 25)}")
            finally:
                for server in running:
                    server.close()
    finally:
        if args.json:
            args.json.write_text(json.dumps(
                [{"server": k[0], "deflate": k[1], "rate": k[2], "runs": v}
                 for k, v in results.items()], indent=1))

    print()
    print(f"Medians of {args.runs} runs. Latency: writer sends -> each reader receives. CPU/upd:"
          " server user+sys CPU per update sent\n(timed phase + drain). srv/cli cores: CPU as a"
          " fraction of one core while sending. deflate 'declined': offered, not accepted.")
    print(table(results))
    for text in profiles:
        print()
        print(text)
    print(f"\nLogs and profiles: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
