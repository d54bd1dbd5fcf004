"""Who may do what: bearer tokens with scopes, the Host allow-list and the security headers.

A token is one of three scopes:

- ``admin``: everything, ``DELETE /api/v1/lessons`` included;
- ``service``: ingest spans of its ``service`` only, read that service's runs, verdicts, lessons and feedback;
- ``read``: read only; with a ``service``, that service's data, without one, every service's.

Tokens come from a TOML file (``[[tokens]]`` entries with ``token`` or its ``sha256``, ``scope``,
``service``, an optional ``name`` for the logs) and from ``AGENTTRACE_ADMIN_TOKEN``. Only SHA-256
digests are kept in memory and compared in constant time; tokens never reach a log. With no token
configured the collector is open, which it allows only on a loopback address (or with ``--insecure``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agenttrace.logs import get_logger

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

log = get_logger("agenttrace.collector.auth")

SCOPES = ("admin", "service", "read")
MIN_TOKEN_CHARS = 16
ENTRY_KEYS = {"name", "token", "sha256", "scope", "service"}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
PRINCIPAL_KEY = "agenttrace.principal"  # where the middleware leaves the request's principal in the ASGI scope


class ConfigError(ValueError):
    """A token file or an exposure setting the collector refuses to start with."""


class Unauthenticated(Exception):
    """No token, or one the collector does not know (HTTP 401, gRPC UNAUTHENTICATED)."""


class Forbidden(Exception):
    """A known token asking for what its scope does not allow (HTTP 403, gRPC PERMISSION_DENIED)."""


@dataclass(frozen=True)
class Principal:
    """What one token may do."""

    name: str
    scope: str
    service: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    def may_read(self, service: str | None) -> bool:
        return self.service is None or service == self.service

    def read_filter(self, asked: str | None) -> str | None:
        """The service a read is limited to: the one asked for, or the token's own; another's is Forbidden."""
        if self.service is None:
            return asked
        if asked is not None and asked != self.service:
            raise Forbidden(f"this token reads service {self.service!r} only, not {asked!r}")
        return self.service

    def check_ingest(self, services: Iterable[str]) -> None:
        if self.scope == "read":
            raise Forbidden("this token is read-only; it cannot export spans")
        if self.service is not None:
            others = sorted(set(services) - {self.service})
            if others:
                raise Forbidden(f"this token exports spans of service {self.service!r} only; the request has "
                                f"spans of {', '.join(map(repr, others))}")

    def check_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this needs an admin token")


OPEN = Principal("open", "admin")  # everyone, when no token is configured


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Tokens:
    """The configured tokens, by SHA-256 digest; empty means the collector is open."""

    def __init__(self, entries: Iterable[tuple[bytes, Principal]] = ()) -> None:
        self.entries = list(entries)

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    @classmethod
    def configured(cls, token_file: str | None, admin_token: str | None) -> Tokens:
        entries = load_token_file(Path(token_file)) if token_file else []
        if admin_token:
            entries.append((digest(_long_enough(admin_token, "AGENTTRACE_ADMIN_TOKEN")),
                            Principal("AGENTTRACE_ADMIN_TOKEN", "admin")))
        digests = [d for d, _ in entries]
        if len(set(digests)) != len(digests):
            raise ConfigError("the same token is configured twice; give every client its own")
        return cls(entries)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header value; OPEN when no token is configured."""
        if not self.enabled:
            return OPEN
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("this collector needs a token: send 'Authorization: Bearer <token>'")
        presented = digest(token.strip())
        found = None
        for known, principal in self.entries:  # every entry is compared, so the time says nothing about a match
            if hmac.compare_digest(known, presented):
                found = principal
        if found is None:
            raise Unauthenticated("unknown token")
        return found


def load_token_file(path: Path) -> list[tuple[bytes, Principal]]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"token file {path} is not valid TOML: {exc}") from None
    extra = set(doc) - {"tokens"}
    items = doc.get("tokens", [])
    if extra or not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"token file {path}: expected only [[tokens]] entries")
    return [_entry(item, f"{path}, entry {n}") for n, item in enumerate(items, 1)]


def _entry(item: dict, where: str) -> tuple[bytes, Principal]:
    unknown = set(item) - ENTRY_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(ENTRY_KEYS))}")
    service = item.get("service")
    scope = item.get("scope", "service" if service else None)
    if scope not in SCOPES:
        raise ConfigError(f"{where}: scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if service is not None and (not isinstance(service, str) or not service):
        raise ConfigError(f"{where}: service must be a non-empty string")
    if scope == "service" and service is None:
        raise ConfigError(f"{where}: a 'service' token needs a service")
    if scope == "admin" and service is not None:
        raise ConfigError(f"{where}: an 'admin' token takes no service")
    if ("token" in item) == ("sha256" in item):
        raise ConfigError(f"{where}: give either token or sha256 (the hex SHA-256 of the token)")
    if "token" in item:
        if not isinstance(item["token"], str):
            raise ConfigError(f"{where}: token must be a string")
        token_digest = digest(_long_enough(item["token"], where))
    else:
        try:
            token_digest = bytes.fromhex(str(item["sha256"]))
        except ValueError:
            token_digest = b""
        if len(token_digest) != 32:
            raise ConfigError(f"{where}: sha256 must be 64 hex digits")
    name = str(item.get("name") or (f"{scope}:{service}" if service else scope))
    return token_digest, Principal(name, scope, service)


def _long_enough(token: str, where: str) -> str:
    if len(token.strip()) < MIN_TOKEN_CHARS or token != token.strip():
        raise ConfigError(f"{where}: a token needs at least {MIN_TOKEN_CHARS} characters and no surrounding spaces "
                          "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, tokens: Tokens, insecure: bool) -> None:
    """Refuses an open collector on an address other machines can reach, unless told it is on purpose."""
    if not tokens.enabled and not is_loopback(host) and not insecure:
        raise ConfigError(f"refusing to serve on {host} without tokens: anyone who can reach it could read every "
                          "run and send spans. Give --token-file (or AGENTTRACE_ADMIN_TOKEN), bind to 127.0.0.1, or "
                          "pass --insecure if the network is trusted.")


class HostAllowList:
    """The names a request's ``Host`` may carry (any port): defeats DNS rebinding against a local collector."""

    def __init__(self, bound_host: str, extra: Iterable[str] = ()) -> None:
        names = {*LOOPBACK_NAMES, bound_host, *extra}
        if bound_host in ("0.0.0.0", "::", ""):  # every interface: the machine's own names and addresses too
            names |= _own_names()
        self.any = "*" in names
        self.names = {n.strip("[]").lower() for n in names}

    def allows(self, host_header: str | None) -> bool:
        if self.any:
            return True
        if not host_header:
            return False
        if host_header.startswith("["):
            name = host_header[1:].partition("]")[0]
        else:
            name = host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header
        return name.lower() in self.names


def _own_names() -> set[str]:
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    return names


class HttpGuard:
    """ASGI middleware: Host check (421), authentication (401) and the security headers on every response.

    The UI's static files carry no data and are served to anyone on an allowed host; the page asks for
    a token and sends it with every API call. The request's principal goes into the ASGI scope. When tokens
    are on, a probe path asked without an ``Authorization`` header (a load balancer, a Kubernetes probe) gets
    no principal and answers liveness only; with a header, the token must be good.
    """

    PUBLIC = ("/", "/ui")
    PROBES = ("/api/v1/health",)

    def __init__(self, app: ASGIApp, tokens: Tokens, hosts: HostAllowList) -> None:
        self.app = app
        self.tokens = tokens
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        headers = Headers(scope=scope)
        path = scope["path"]
        if not self.hosts.allows(headers.get("host")):
            log.info("http.host_rejected", path=path)
            reply = JSONResponse({"detail": "this Host is not served here; add it with --allowed-host"}, 421)
            await reply(scope, receive, secured)
            return
        public = path in self.PUBLIC or path.startswith("/ui/")
        probe = self.tokens.enabled and path in self.PROBES and "authorization" not in headers
        if not (public or probe):
            try:
                scope[PRINCIPAL_KEY] = self.tokens.authenticate(headers.get("authorization"))
            except Unauthenticated as exc:
                log.info("http.unauthenticated", path=path, reason=str(exc))
                reply = JSONResponse({"detail": str(exc)}, 401, headers={"WWW-Authenticate": 'Bearer realm="agenttrace"'})
                await reply(scope, receive, secured)
                return
        await self.app(scope, receive, secured)


def request_principal(request: Request) -> Principal:
    """The principal HttpGuard found for this request (a KeyError without the guard: fails closed)."""
    return request.scope[PRINCIPAL_KEY]


async def forbidden_reply(request: Request, exc: Forbidden) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, 403)


def grpc_principal(tokens: Tokens, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
    """The principal of a gRPC call from its ``authorization`` metadata."""
    value = next((v for k, v in metadata if k == "authorization"), None)
    return tokens.authenticate(value.decode() if isinstance(value, bytes) else value)
