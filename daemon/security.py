"""Credentials and TLS towards the broker, decided once at start-up: one clear line per problem.

* Password: ``mqtt.password_file`` (read here; a warning when group or others may read it), else
  ``mqtt.password``, else ``$OVEDGE_MQTT_PASSWORD``. It is never logged: only where it came from.
* TLS: every file named in ``[mqtt.tls]`` is checked before paho sees it, so a missing CA file is
  one line naming the key and the path (paho would raise ``FileNotFoundError`` from deep inside
  ``ssl``), and a file that is not a certificate or key says which one.
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
from pathlib import Path

import paho.mqtt.client as mqtt

from daemon.config import DaemonConfig
from ovedge.errors import ConfigError

__all__ = ["PASSWORD_ENV", "CredentialFileError", "TlsFileError", "check_security", "configure_security",
           "password_source"]

log = logging.getLogger(__name__)

PASSWORD_ENV = "OVEDGE_MQTT_PASSWORD"  # noqa: S105  # the variable's name, not a password


class TlsFileError(ConfigError):
    """A file named in ``[mqtt.tls]`` is missing, unreadable or not what the key says."""

    def __init__(self, key: str, path: Path, problem: str) -> None:
        self.key = key
        self.path = path
        self.problem = problem
        super().__init__(f"mqtt.tls.{key} {path} {problem}; fix the path in [mqtt.tls] or the file")


class CredentialFileError(ConfigError):
    """``mqtt.password_file`` cannot be read."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"mqtt.password_file {path} {problem}; fix the path or the file's permissions")


def password_source(cfg: DaemonConfig) -> tuple[str | None, str]:
    """The password and where it came from (for the log: the source, never the value)."""
    c = cfg.mqtt
    if c.password_file is not None:
        path = c.password_file
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError as exc:
            raise CredentialFileError(path, "does not exist") from exc
        except OSError as exc:
            raise CredentialFileError(path, f"cannot be read ({exc.strerror})") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("mqtt.password_file %s may be read by group or others (mode %o): chmod 600 it",
                        path, stat.S_IMODE(mode))
        return text, f"password file {path}"
    if c.password is not None:
        return c.password.get_secret_value(), "mqtt.password in the config"
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env, f"${PASSWORD_ENV}"
    return None, "no password"


def _check_file(key: str, path: Path | None) -> str | None:
    if path is None:
        return None
    if not path.exists():
        raise TlsFileError(key, path, "does not exist")
    if not path.is_file():
        raise TlsFileError(key, path, "is not a file")
    if not os.access(path, os.R_OK):
        raise TlsFileError(key, path, "cannot be read by this user")
    return str(path)


def _tls_context(cfg: DaemonConfig) -> ssl.SSLContext:
    t = cfg.mqtt.tls
    assert t is not None
    ca = _check_file("ca_file", t.ca_file)
    cert = _check_file("cert_file", t.cert_file)
    key = _check_file("key_file", t.key_file)
    if key is not None and cert is None:
        raise TlsFileError(key="key_file", path=Path(key), problem="is given without mqtt.tls.cert_file")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise TlsFileError(key="ca_file", path=Path(ca),
                               problem=f"holds no usable CA certificate ({exc.reason})") from exc
    if cert is not None:
        try:
            context.load_cert_chain(certfile=cert, keyfile=key)
        except ssl.SSLError as exc:
            raise TlsFileError(key="cert_file", path=Path(cert),
                               problem=f"and its key do not load ({exc.reason}); give the PEM "
                               "certificate and, unless it holds the key, mqtt.tls.key_file") from exc
    if t.insecure:
        context.check_hostname = False
    return context


def configure_security(client: mqtt.Client, cfg: DaemonConfig) -> str:
    """Credentials and TLS from ``[mqtt]`` on ``client``; returns a loggable summary (no secret)."""
    c = cfg.mqtt
    said = []
    if c.username is not None:
        password, source = password_source(cfg)
        client.username_pw_set(c.username, password)
        said.append(f"user {c.username} ({source})")
    if c.tls is not None:
        client.tls_set_context(_tls_context(cfg))
        if c.tls.insecure:
            client.tls_insecure_set(True)
        said.append("TLS" + (" with a client certificate" if c.tls.cert_file else "")
                    + (" WITHOUT host-name check" if c.tls.insecure else ""))
    return ", ".join(said) or "anonymous, plain TCP"


def check_security(cfg: DaemonConfig) -> str:
    """For ``check-config`` (also with ``--no-broker``): the TLS files and the password load; the summary."""
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{cfg.client_id}-check",
                         protocol=MQTTProtocolVersion.MQTTv5)
    return configure_security(client, cfg)
