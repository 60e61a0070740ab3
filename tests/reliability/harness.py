"""What the reliability tests drive: a private, throw-away PostgreSQL cluster (so that it
can be stopped, restarted or crashed without touching the shared server), HealthSpace's
own commands in subprocesses, the production WSGI server (granian, as `healthspace up`
starts it) and logged-in HTTP clients.

Everything here runs on loopback only, with bounded waits: a test that would hang fails
with the reason instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pyotp
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GRANIAN = str(Path(sys.executable).parent / "granian")
PG_BIN = Path(os.environ.get("HEALTHSPACE_RELIABILITY_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _port_range(variable: str, default: str) -> range:
    low, _, high = (os.environ.get(variable) or default).partition("-")
    return range(int(low), int(high or low) + 1)


# Ports the suite may use (loopback only): the private cluster, and the app servers.
PG_PORTS = _port_range("HEALTHSPACE_RELIABILITY_PG_PORTS", "55433-55435")
APP_PORTS = _port_range("HEALTHSPACE_RELIABILITY_APP_PORTS", "18100-18199")
# Every wait is bounded; none of these is a performance claim.
COMMAND_TIMEOUT = 240
READY_TIMEOUT = 60
HTTP_TIMEOUT = 20


class HarnessError(AssertionError):
    """The set-up itself failed (with the log that says why)."""


def free_port(candidates: range) -> int:
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise HarnessError(f"no free port in {candidates.start}-{candidates.stop - 1}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- the private PostgreSQL cluster ------------------------------------------------------


class PrivateCluster:
    """A PostgreSQL 15 cluster of its own under a temporary folder, on a port of the
    suite's range, with trust authentication on 127.0.0.1 only. PostgreSQL refuses to
    run as root, so as root every server command runs as the ``postgres`` user."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.data = root / "pgdata"
        self.log = root / "postgresql.log"
        self.running = False

    def _as_owner(self, argv: list[str], *, timeout: float = COMMAND_TIMEOUT) -> str:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise HarnessError(
                f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                f"{_tail(self.log)}"
            )
        return done.stdout

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
        initdb = [
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        ]  # fmt: skip
        self._as_owner(initdb)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# HealthSpace reliability tests: private, loopback only\n"
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 60\n"
                "shared_buffers = 128MB\n"
                # durable commits, as in production: an acknowledged write must survive
                "fsync = on\nsynchronous_commit = on\n"
                "log_min_messages = warning\n"
            )

    def start(self) -> None:
        self._as_owner(self._ctl("start"))
        self.running = True

    def restart(self, mode: str = "fast") -> None:
        self._as_owner(self._ctl("restart", "-m", mode))
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._as_owner(self._ctl("stop", "-m", mode))
        self.running = False

    def _ctl(self, action: str, *extra: str) -> list[str]:
        return [
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-w", "-t", "60", *extra, action,
        ]  # fmt: skip

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10)

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple]:
        with self.connect(dbname) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str, template: str | None = None) -> None:
        # names are the suite's own (letters, digits, underscores), never user input
        assert re.fullmatch(r"[a-z0-9_]+", name), name
        clause = f" TEMPLATE {template}" if template else ""
        self.sql(f"CREATE DATABASE {name}{clause}")

    def tool(self, name: str) -> str:
        """A client tool of the same major version as the server (pg_dump, pg_restore)."""
        return str(PG_BIN / name)


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    root = Path(tempfile.mkdtemp(prefix="hs-reliability-pg-"))
    cluster = PrivateCluster(root, free_port(PG_PORTS))
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


# --- HealthSpace in production configuration ---------------------------------------------


def production_secrets() -> dict[str, str]:
    """Fresh secrets, as an operator sets them in the environment (never demo secrets)."""
    from healthspace.config.env import new_secrets

    return new_secrets()


# Variables of the calling environment that must not leak into the service under test
# (the test run's own database, demo switches, settings overrides).
_DROPPED = re.compile(
    r"^(DATABASE_.*|DB_.*|HEALTHSPACE_.*|SECRET_KEY|DJANGO_SETTINGS_MODULE|ALLOWED_HOSTS|"
    r"CSRF_TRUSTED_ORIGINS|SECURE_.*|BEHIND_TLS_PROXY|EMAIL_.*|LOG_LEVEL)$"
)


@dataclass
class Service:
    """One HealthSpace installation: its databases (main and key store) on the private
    cluster, its data folder, and the production environment that reaches them."""

    cluster: PrivateCluster
    database: str
    data_dir: Path
    secrets: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def keystore(self) -> str:
        return f"{self.database}_keystore"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not _DROPPED.match(k)}
        env.update(self.secrets)
        env.update(
            {
                "HEALTHSPACE_ENV": "production",
                "DATABASE_URL": self.cluster.url(self.database),
                "HEALTHSPACE_KEYSTORE_URL": self.cluster.url(self.keystore),
                "HEALTHSPACE_DATA_DIR": str(self.data_dir),
                # TLS ends at a proxy in front, as in production: the client sends
                # X-Forwarded-Proto: https, so cookies are Secure and HSTS is on.
                "BEHIND_TLS_PROXY": "true",
                "ALLOWED_HOSTS": "127.0.0.1",
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def command(
        self, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """A `healthspace` command, as an operator runs it."""
        done = subprocess.run(
            [PYTHON, "-m", "healthspace.cli", *args],
            cwd=REPO_ROOT,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise HarnessError(
                f"healthspace {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
            )
        return done

    def script(self, name: str, payload: dict[str, Any] | None = None, **env: str) -> Any:
        """A step of tests/reliability/scenario.py inside the service's own Django (to
        seed logins or to check what is stored); JSON in, JSON out."""
        done = subprocess.run(
            [PYTHON, "-m", "tests.reliability.scenario", name],
            cwd=REPO_ROOT,
            env=self.env(**env),
            input=json.dumps(payload or {}),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise HarnessError(f"scenario {name} exited {done.returncode}:\n{done.stderr[-6000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


# --- the production WSGI server ----------------------------------------------------------


class AppServer:
    """granian serving healthspace.config.wsgi, as `healthspace up` starts it, in a
    process group of its own so that a kill reaches every process of it. Every server
    made is in ``AppServer.made``, so that the suite stops it after a test that failed."""

    made: ClassVar[list[AppServer]] = []

    def __init__(self, service: Service, *, threads: int = 4, log_name: str = "app") -> None:
        self.service, self.threads = service, threads
        self.port = free_port(APP_PORTS)
        self.log = service.data_dir / f"{log_name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        AppServer.made.append(self)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start and wait until it answers; returns the seconds that took."""
        began = time.monotonic()
        argv = [
            GRANIAN, "--interface", "wsgi", "healthspace.config.wsgi:application",
            "--workers", "1", "--blocking-threads", str(self.threads),
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=self.service.env(HEALTHSPACE_BASE_URL=f"https://127.0.0.1:{self.port}"),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = began + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"granian exited {self.process.returncode}:\n{_tail(self.log)}")
            try:
                response = requests.get(
                    f"{self.base}/login/", headers=PROXY_HEADERS, timeout=2, allow_redirects=False
                )
                if response.status_code == 200:
                    return time.monotonic() - began
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise HarnessError(f"granian did not answer in {READY_TIMEOUT}s:\n{_tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL to the whole server (main process and worker): no clean-up runs."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# --- logged-in HTTP clients ---------------------------------------------------------------

# What the TLS proxy in front of the service adds to every request.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    """A patient's HTTP client with its own session cookie, as a browser behind the
    proxy sends it (Secure cookies, a same-origin Referer for Django's HTTPS CSRF check)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers.update({**PROXY_HEADERS, "User-Agent": "Mozilla/5.0 (X11) Chrome/140"})
        self.origin = "https://" + base.split("://", 1)[1]
        self.csrf = ""

    def _cookie_header(self) -> dict[str, str]:
        # To the service the request came over HTTPS through the proxy, so the browser
        # sends its Secure cookies (__Host-...) too; requests would not over http://.
        jar = self.http.cookies
        return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in jar)} if jar else {}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        headers = {**self._cookie_header(), **kwargs.pop("headers", {})}
        return self.http.get(self.base + path, headers=headers, **kwargs)

    def post(
        self, path: str, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        headers = {
            "Referer": self.origin + path,
            **self._cookie_header(),
            **kwargs.pop("headers", {}),
        }
        body = {"csrfmiddlewaretoken": self.csrf, **(data or {})}
        return self.http.post(self.base + path, data=body, headers=headers, **kwargs)

    def take_csrf(self, response: requests.Response) -> None:
        found = CSRF_INPUT.search(response.text)
        if found:
            self.csrf = found.group(1)

    def tab(self) -> Browser:
        """A second tab of the same browser: the same session, its own connection."""
        other = Browser(self.base)
        other.http.cookies.update(self.http.cookies)
        other.csrf = self.csrf
        return other

    def log_in(self, email: str, password: str, totp_secret: str) -> None:
        """Through the login pages: password, then the code of the authenticator app."""
        self.take_csrf(self.get("/login/"))
        response = self.post("/login/", {"username": email, "password": password})
        if response.status_code != 302 or "/two-factor/verify/" not in response.headers.get(
            "Location", ""
        ):
            raise HarnessError(f"login of {email}: {response.status_code} {response.text[:500]}")
        page = self.get(response.headers["Location"])
        self.take_csrf(page)
        code = pyotp.TOTP(totp_secret).now()
        response = self.post("/account/two-factor/verify/", {"code": code})
        if response.status_code != 302:
            raise HarnessError(f"second factor of {email}: {response.status_code}")
        record = self.get("/record/")
        if record.status_code != 200:
            raise HarnessError(f"record page after login of {email}: {record.status_code}")
        self.take_csrf(self.get("/organiser/readings/weight/add/"))
        if not self.csrf:
            raise HarnessError("no CSRF token on the reading form")


def system_key() -> tuple[Any, dict[str, Any]]:
    """A GP system's signing key (P-384) and its public JWKS, to register the client."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return key, {"keys": [{**jwk, "kid": "key-1", "alg": "ES384", "use": "sig"}]}


def backend_token(
    base: str, client_id: str, private_key: Any, *, scope: str = "system/*.rs"
) -> str:
    """A SMART Backend Services token (client credentials with a signed assertion), from
    the real token endpoint."""
    import uuid

    import jwt

    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"https://127.0.0.1:{base.rsplit(':', 1)[1]}/oauth/token/",
        "exp": int(time.time()) + 240,
        "jti": str(uuid.uuid4()),
    }
    assertion = jwt.encode(claims, private_key, algorithm="ES384", headers={"kid": "key-1"})
    response = requests.post(
        f"{base}/oauth/token/",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        headers=PROXY_HEADERS,
        timeout=HTTP_TIMEOUT,
    )
    if response.status_code != 200:
        raise HarnessError(f"backend token: {response.status_code} {response.text[:500]}")
    return response.json()["access_token"]
