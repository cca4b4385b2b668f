"""``[mqtt]`` and ``[mqtt.tls]``: the broker results go to."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from daemon.config._base import Section
from ovedge.paths import ConfigPath

__all__ = ["MqttConfig", "TlsConfig"]


class TlsConfig(Section):
    """TLS towards the broker."""

    ca_file: ConfigPath | None = Field(None, description="CA bundle (PEM) the broker's certificate is checked "
                                       "against; unset = system CAs")
    cert_file: ConfigPath | None = Field(None, description="client certificate (mutual TLS)")
    key_file: ConfigPath | None = Field(None, description="client key (mutual TLS)")
    insecure: bool = Field(False, description="skip host-name check (never on a real line)")


class MqttConfig(Section):
    """The broker results go to (MQTT v5)."""

    host: str = Field("127.0.0.1", description="broker host")
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    client_id: str = Field("", description="client id; empty = ovedge-<station>")
    username: str | None = Field(None, description="user name")
    password: SecretStr | None = Field(
        None, description="password (prefer password_file or $OVEDGE_MQTT_PASSWORD); never logged"
    )
    password_file: ConfigPath | None = Field(
        None, description="file holding the password (read at start; a warning when others may read it); "
        "with neither key, $OVEDGE_MQTT_PASSWORD is used when set",
    )
    tls: TlsConfig | None = Field(None, description="TLS settings; unset = plain TCP")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of result messages")
    keepalive: int = Field(15, ge=5, le=3600, description="seconds; a dead broker is noticed after ~2x")
    session_expiry: int = Field(3600, ge=0, description="seconds the broker keeps our session")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to wait for the broker at start-up")
    require_at_start: bool = Field(
        True, description="refuse to start when the broker does not answer within connect_timeout"
    )
    max_inflight: int = Field(
        100, ge=1, le=65535, description="unacknowledged results at once: the window the spool is sent through"
    )
    stats_interval: float = Field(
        10.0, ge=0.0, description="seconds between <prefix>/<station>/stats messages (per-camera counters); 0 = none"
    )

    @model_validator(mode="after")
    def _one_password(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            msg = "give mqtt.password or mqtt.password_file, not both"
            raise ValueError(msg)
        return self
