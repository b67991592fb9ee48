"""Transport security for anything that leaves the machine (MQTT, remote viewers): a verifying TLS
client context, per-site credentials from the OS keyring or an owner-only secrets file, and a logging
filter that keeps secrets out of logs. Called at start-up from the thread that builds the link.
"""
from __future__ import annotations

import logging
import os
import re
import ssl
import stat
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import UserError

KEYRING_SERVICE_PREFIX = "esms/"


def client_tls_context(cafile: Path | None = None, certfile: Path | None = None,
                       keyfile: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+ client context that verifies the server certificate and host name.

    cafile: the CA that signed the broker/server certificate (None: the system trust store).
    certfile/keyfile: a client certificate for mutual TLS, if the server asks for one."""
    for label, path in (("CA file", cafile), ("client certificate", certfile), ("client key", keyfile)):
        if path is not None and not Path(path).is_file():
            raise UserError(f"TLS {label} {path} does not exist")
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile) if cafile else None)
        if certfile is not None:
            ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    except ssl.SSLError as exc:
        raise UserError(f"TLS files are not usable ({cafile}, {certfile}): {exc.reason or exc}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    return ctx


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    origin: str = ""                  # "keyring" or the secrets file path, for messages


def load_credentials(name: str, secrets_file: Path | None, keyring_backend: Any = None,
                     redactor: "SecretRedactor | None" = None) -> Credentials:
    """Credentials for connection `name` (e.g. "mqtt"): first the OS keyring (service `esms/<name>`,
    entries `username` and `password`), then section [<name>] of the secrets file (TOML, mode 0600,
    owned by this user). keyring_backend: None = the keyring package's backend when it is installed
    and recommended (priority >= 1, so never a plain-text one). The password is added to `redactor`."""
    creds = _from_keyring(name, keyring_backend) or (_from_file(name, Path(secrets_file)) if secrets_file else None)
    if creds is None:
        where = f"the secrets file {secrets_file}" if secrets_file else "no secrets file configured"
        raise UserError(f"no credentials for '{name}': not in the OS keyring (service "
                        f"{KEYRING_SERVICE_PREFIX}{name}) and not in {where}")
    if redactor is not None:
        redactor.add(creds.password)
    return creds


def _from_keyring(name: str, backend: Any) -> Credentials | None:
    if backend is None:
        try:
            import keyring
        except ImportError:
            return None
        backend = keyring.get_keyring()
        if backend.priority < 1:
            return None
    service = KEYRING_SERVICE_PREFIX + name
    username, password = backend.get_password(service, "username"), backend.get_password(service, "password")
    return Credentials(username, password, "keyring") if username and password else None


def _from_file(name: str, path: Path) -> Credentials | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"secrets file {path} does not exist") from None
    if os.name == "posix":
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError(f"secrets file {path} has permissions {stat.S_IMODE(st.st_mode):04o}: "
                            f"run chmod 600 {path}")
        if st.st_uid != os.getuid():
            raise UserError(f"secrets file {path} belongs to another user: it must be owned by the ESMS user")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"secrets file {path} is not valid TOML: {exc}") from None
    section = data.get(name)
    if section is None:
        return None
    username, password = (section.get("username"), section.get("password")) if isinstance(section, dict) \
        else (None, None)
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise UserError(f"secrets file {path}: section [{name}] needs non-empty strings 'username' and 'password'")
    return Credentials(username, password, str(path))


class SecretRedactor(logging.Filter):
    """Logging filter replacing known secrets and `password=...`-style values with ***.

    Attach it to handlers (`install`), not loggers: a logger's filters do not see records that
    propagate from child loggers."""

    _PATTERN = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)")

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, secret: str) -> None:
        """Redact this exact string from now on (any thread)."""
        if secret:
            with self._lock:
                self._secrets = tuple(sorted({*self._secrets, secret}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._PATTERN.sub(lambda m: m.group(1) + m.group(2) + "***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True                      # a malformed call: the handler reports it as usual
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True

    def install(self, logger: logging.Logger | None = None) -> None:
        """Attach to every handler of `logger` (default: root), e.g. right after logging.basicConfig."""
        for handler in (logger or logging.getLogger()).handlers:
            handler.addFilter(self)
