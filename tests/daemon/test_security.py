"""Security towards the broker, against a real Mosquitto: TLS with certificates made by the test,
credentials from a file or the environment, the documented ACL (deploy/mosquitto/acl)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.commands import CommandContext, Commands
from daemon.config import DaemonConfig, load_config
from daemon.inspect import InspectRequests
from daemon.publisher import Publisher
from daemon.security import PASSWORD_ENV, TlsFileError
from daemon.spool import RowState, Spool
from tests.configs import write_config
from tests.factories import result_drafts
from tests.waiting import wait_until
from tools.certs import make_certs
from tools.mosquitto import Mosquitto, TlsListener, free_port, make_password_file
from tools.request import Requester
from tools.subscriber import Subscriber

ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "deploy" / "mosquitto" / "acl"
SECRET = "s3cret-Pa55"


def _cfg(tmp_path: Path, port: int, *, station: str = "station1", mqtt: dict[str, Any] | None = None,
         commands: bool = False) -> DaemonConfig:
    path = write_config(
        tmp_path, station={"name": station}, state={"dir": tmp_path / "state"},
        mqtt={"port": port, "connect_timeout": 5, **(mqtt or {})},
        spool={"replay_delay": 0, "retry_interval": 1, "drain_timeout": 3},
        commands={"enabled": commands},
    )
    return load_config(path)


def test_results_are_delivered_over_mutual_tls(tmp_path: Path) -> None:
    """With [mqtt.tls] (CA, client certificate and key made by the test) the daemon connects to a
    Mosquitto TLS listener that requires a client certificate, and its spooled results are delivered."""
    certs = make_certs(tmp_path / "certs")
    tls = TlsListener(certs.ca, certs.server_cert, certs.server_key, require_certificate=True)
    with Mosquitto(tls=tls) as b:
        cfg = _cfg(tmp_path, b.port, mqtt={"tls": {"ca_file": certs.ca, "cert_file": certs.client_cert,
                                                   "key_file": certs.client_key}})
        sub = Subscriber(b.port, ["ovedge/station1/cam0/result"])
        sub.client.tls_set(ca_certs=str(certs.ca), certfile=str(certs.client_cert), keyfile=str(certs.client_key))
        with Spool(cfg.state_dir(), cfg.spool) as spool, sub, Publisher(cfg, dict, spool=spool) as pub:
            assert "TLS with a client certificate" in pub.security
            spool.commit(result_drafts(10, station="station1"))
            pub.wake()
            assert wait_until(lambda: spool.depth == 0)
            assert {r.state for r in spool.since(0)} == {RowState.DELIVERED}
        got = sorted(json.loads(p)["seq"] for _, p, _ in sub.drain())
    assert got == list(range(1, 11))


@pytest.mark.parametrize("key", ["ca_file", "cert_file"])
def test_a_missing_tls_file_is_one_line_naming_it(tmp_path: Path, key: str) -> None:
    """A TLS file that does not exist is a TlsFileError whose message is one line naming the key and the
    path (not a traceback from inside ssl)."""
    certs = make_certs(tmp_path / "certs")
    missing = tmp_path / "nowhere" / "missing.pem"
    tls = {"ca_file": certs.ca, "cert_file": certs.client_cert, "key_file": certs.client_key, key: missing}
    cfg = _cfg(tmp_path, 1, mqtt={"tls": tls})
    with pytest.raises(TlsFileError) as err:
        Publisher(cfg, dict)
    assert err.value.key == key and err.value.path == missing
    assert "\n" not in str(err.value) and str(missing) in str(err.value) and f"mqtt.tls.{key}" in str(err.value)


def test_a_file_that_is_not_a_certificate_is_one_line(tmp_path: Path) -> None:
    """A CA file holding no certificate is refused with one line naming it."""
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n", encoding="utf-8")
    cfg = _cfg(tmp_path, 1, mqtt={"tls": {"ca_file": bogus}})
    with pytest.raises(TlsFileError) as err:
        Publisher(cfg, dict)
    assert err.value.path == bogus and "\n" not in str(err.value)


def test_password_from_the_environment_is_used_and_never_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """With a user name and no password in the config, $OVEDGE_MQTT_PASSWORD authenticates against a
    broker that refuses anonymous clients; the log says where the password came from, never the password."""
    passwd = make_password_file(tmp_path / "passwd", {"ovedge-station1": SECRET})
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    with Mosquitto(anonymous=False, password_file=passwd) as b:
        cfg = _cfg(tmp_path, b.port, mqtt={"username": "ovedge-station1"})
        with Publisher(cfg, dict) as pub:
            assert pub.connected
            assert f"${PASSWORD_ENV}" in pub.security
    assert SECRET not in caplog.text
    assert "connected to MQTT broker" in caplog.text


def test_a_password_file_readable_by_others_is_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A password file with group/other permissions still works but logs one warning naming it (not its content)."""
    passwd = make_password_file(tmp_path / "passwd", {"ovedge-station1": SECRET})
    secret_file = tmp_path / "mqtt.password"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    secret_file.chmod(0o644)
    caplog.set_level(logging.DEBUG)
    with Mosquitto(anonymous=False, password_file=passwd) as b:
        cfg = _cfg(tmp_path, b.port, mqtt={"username": "ovedge-station1", "password_file": secret_file})
        with Publisher(cfg, dict) as pub:
            assert pub.connected
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "password_file" in r.getMessage()]
    assert len(warnings) == 1 and str(secret_file) in warnings[0].getMessage()
    assert SECRET not in caplog.text


def _acl_broker(tmp_path: Path) -> Mosquitto:
    passwd = make_password_file(tmp_path / "passwd", {"ovedge-station1": SECRET, "mes": "mes-pw"})
    return Mosquitto(anonymous=False, password_file=passwd, acl_file=ACL)


def test_documented_acl_lets_the_daemon_write_its_topics_and_answer_commands(tmp_path: Path) -> None:
    """Under deploy/mosquitto/acl the station's daemon publishes results and status, reads its command
    topic and answers on the requester's reply topic; the line client 'mes' receives all of it."""
    with _acl_broker(tmp_path) as b:
        cfg = _cfg(tmp_path, b.port, commands=True,
                   mqtt={"username": "ovedge-station1", "password": SECRET})
        commands = Commands(cfg)
        sub = Subscriber(b.port, ["ovedge/station1/#"], client_id="mes-sub")
        sub.client.username_pw_set("mes", "mes-pw")
        with Spool(cfg.state_dir(), cfg.spool) as spool, sub, \
                Publisher(cfg, dict, spool=spool, commands=commands) as pub:
            commands.bind(CommandContext(responder=pub, spool=spool, swapper=None, model=lambda: ("demo", 1),
                                         versions=lambda _name: [1], cameras=("cam0",), inspect=InspectRequests(),
                                         reload=dict))
            with commands, Requester(b.port, station="station1", client_id="mes", username="mes",
                                     password="mes-pw") as req:
                spool.commit(result_drafts(5, station="station1"))
                pub.wake()
                assert wait_until(lambda: spool.depth == 0)
                answer = req.ask("status", timeout=30)
            assert pub.counters.rejected == 0
        topics = [t for t, _, _ in sub.drain()]
    assert answer["ok"] is True and answer["verb"] == "status"
    assert answer["status"]["station"] == "station1"
    assert topics.count("ovedge/station1/cam0/result") == 5
    assert "ovedge/station1/status" in topics


def test_documented_acl_refuses_other_topics_the_alarm_is_raised_and_rows_stay(tmp_path: Path) -> None:
    """The same user publishing as another station (topics the ACL does not grant it) gets PUBACK 0x87:
    the rejected:<camera> alarm is raised and every row stays in the spool, undelivered."""
    with _acl_broker(tmp_path) as b:
        cfg = _cfg(tmp_path, b.port, station="station2",
                   mqtt={"username": "ovedge-station1", "password": SECRET})
        sub = Subscriber(b.port, ["ovedge/#"], client_id="mes-sub")
        sub.client.username_pw_set("mes", "mes-pw")
        with Spool(cfg.state_dir(), cfg.spool) as spool, sub, Publisher(cfg, dict, spool=spool) as pub:
            spool.commit(result_drafts(5, station="station2"))
            pub.wake()
            assert wait_until(lambda: pub.counters.rejected >= 5)
            assert "rejected:cam0" in pub.alarms.active()
            assert "0x87" in pub.alarms.active()["rejected:cam0"]
            assert spool.depth == 5
            assert {r.state for r in spool.since(0)} == {RowState.REJECTED}
        leaked = [t for t, _, _ in sub.drain() if t.startswith("ovedge/station2/") and t.endswith("/result")]
    assert pub.counters.delivered == 0
    assert leaked == []


def test_ovedged_with_a_missing_ca_file_says_one_line_and_exits_2(demo_store: Path, tmp_path: Path) -> None:
    """`ovedged run` with mqtt.tls.ca_file pointing nowhere prints exactly one line naming the file (no
    traceback) and exits 2 (a config error)."""
    missing = tmp_path / "missing-ca.pem"
    config = write_config(tmp_path, model={"store": demo_store, "name": "demo", "cache": False},
                          state={"dir": tmp_path / "state"}, mqtt={"port": 1, "tls": {"ca_file": missing}})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(Path(sys.executable).parent / "ovedged"), "run", "--config", str(config)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert done.returncode == 2, done.stderr
    assert errors == [f"ovedged: error: mqtt.tls.ca_file {missing} does not exist; fix the path in [mqtt.tls] "
                      "or the file"]


def test_check_config_reads_the_tls_files_even_without_the_broker(demo_store: Path, tmp_path: Path) -> None:
    """`check-config --no-broker` (commissioning before the broker exists) still checks [mqtt.tls]: the
    certificates made by the test pass with one summary line; none of their content is printed."""
    certs = make_certs(tmp_path / "certs")
    config = write_config(tmp_path, model={"store": demo_store, "name": "demo", "cache": False},
                          state={"dir": tmp_path / "state"},
                          mqtt={"port": 1, "tls": {"ca_file": certs.ca, "cert_file": certs.client_cert,
                                                   "key_file": certs.client_key}})
    done = subprocess.run([str(Path(sys.executable).parent / "ovedged"), "check-config", "--no-broker",
                           "--config", str(config)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 0, done.stderr
    assert "mqtt security: TLS with a client certificate (TLS files and password read)" in done.stdout.splitlines()
    assert "PRIVATE KEY" not in done.stdout + done.stderr


def test_the_documented_broker_config_serves_the_daemon_over_tls(tmp_path: Path) -> None:
    """deploy/mosquitto/ovedge.conf, with only its paths and port replaced, loads in a real Mosquitto, and the
    daemon's publisher (user ovedge-station1, password from a file, TLS with the test's CA) connects to it."""
    certs = make_certs(tmp_path / "certs")
    passwd = make_password_file(tmp_path / "ovedge.passwd", {"ovedge-station1": SECRET})
    secret = tmp_path / "mqtt.password"
    secret.write_text(SECRET, encoding="utf-8")
    secret.chmod(0o600)
    port = free_port()
    text = (ROOT / "deploy" / "mosquitto" / "ovedge.conf").read_text(encoding="utf-8")
    for old, new in (("/etc/mosquitto/ovedge.passwd", passwd), ("/etc/mosquitto/ovedge.acl", ACL),
                     ("/var/lib/mosquitto/", f"{tmp_path}/"), ("listener 8883", f"listener {port} 127.0.0.1"),
                     ("/etc/mosquitto/certs/ca.pem", certs.ca), ("/etc/mosquitto/certs/broker.pem", certs.server_cert),
                     ("/etc/mosquitto/certs/broker.key", certs.server_key)):
        assert old in text
        text = text.replace(old, str(new))
    with Mosquitto(port, conf=text):
        cfg = _cfg(tmp_path, port, mqtt={"username": "ovedge-station1", "password_file": secret,
                                         "tls": {"ca_file": certs.ca}})
        with Publisher(cfg, dict) as pub:
            assert pub.connected
