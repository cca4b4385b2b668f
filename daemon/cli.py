"""``ovedged``: ``run`` the inspection service, ``check-config`` without starting anything,
``install-service`` (the systemd unit, an example config, the service user), or ``export-review``
(the frames kept for re-labelling, as a CVAT task).

User-fixable problems (:class:`ovedge.errors.OvedgeError`) leave as one line each on stderr and
a non-zero exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from ovedge.errors import OvedgeError

DEFAULT_CONFIG = Path("/etc/ovedge/config.toml")
log = logging.getLogger("ovedged")


def _parser() -> argparse.ArgumentParser:
    from ovedge.about import VersionAction

    parser = argparse.ArgumentParser(prog="ovedged", description="OpenVINO defect-inspection daemon")
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the inspection service until SIGTERM/SIGINT")
    check = sub.add_parser("check-config", help="validate the config and check model, device, cameras, broker")
    for p in (run, check):
        p.add_argument("--config", type=Path, default=Path(os.environ.get("OVEDGE_CONFIG", DEFAULT_CONFIG)),
                       help="config file (default: $OVEDGE_CONFIG or /etc/ovedge/config.toml)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set mqtt.port=1884 (repeatable)")
        p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=None,
                       help="overrides [logging] level")
    run.add_argument("--until-sources-end", action="store_true",
                     help="stop (exit 0) once every camera source has ended, e.g. a folder or a file")
    check.add_argument("--syntax-only", action="store_true",
                       help="only validate the file; do not touch the model, cameras or broker")
    check.add_argument("--no-broker", action="store_true",
                       help="check the file, the model (verify, compile, self-test) and the cameras, not the broker")
    review = sub.add_parser("export-review",
                            help="the frames kept for re-labelling ([evidence] uncertain_margin) as a CVAT task zip")
    review.add_argument("--config", type=Path, default=Path(os.environ.get("OVEDGE_CONFIG", DEFAULT_CONFIG)),
                        help="the daemon's config: its state folder holds the frames")
    review.add_argument("--out", type=Path, required=True, metavar="ZIP", help="the task to write, e.g. review.zip")
    review.add_argument("--camera", dest="cameras", action="append", default=[], metavar="ID",
                        help="only this camera's frames (repeatable; default: all)")
    review.add_argument("--since", type=_utc, default=None, metavar="ISO8601",
                        help="only frames kept from this time on, e.g. 2026-11-30T06:00:00Z")
    review.add_argument("--force", action="store_true", help="replace --out when it exists")
    inst = sub.add_parser("install-service", help="install the systemd unit, /etc/ovedge/config.toml and the user")
    inst.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    inst.add_argument("--root", type=Path, default=None, metavar="DIR",
                      help="install under DIR instead of / (an image, a test); no root needed")
    inst.add_argument("--no-user", dest="create_user", action="store_false",
                      help="do not create the system user ovedge")
    inst.add_argument("--ovedged", type=Path, default=None, metavar="PATH",
                      help="the ovedged the unit runs (default: the one running this command)")
    inst.add_argument("--instance", default=None, metavar="NAME",
                      help="one of several daemons on this PC: the template unit ovedged@.service and "
                      "/etc/ovedge/NAME.toml for station NAME (run once per station)")
    return parser


def _utc(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"{text!r} is not an ISO 8601 time (e.g. 2026-11-30T06:00:00Z)"
        raise argparse.ArgumentTypeError(msg) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "export-review":
            return _export_review(args.config, args.out, cameras=args.cameras, since=args.since, force=args.force)
        if args.command == "install-service":
            from daemon.install import install_service

            install_service(root=args.root, dry_run=args.dry_run, create_user=args.create_user,
                            ovedged=args.ovedged, instance=args.instance)
            return 0
        # A fatal signal (the watchdog's SIGABRT, a crash in native code) writes every thread's
        # Python stack to stderr, i.e. the journal.
        faulthandler.enable(file=sys.stderr, all_threads=True)
        from daemon.config import load_config
        from daemon.journal import setup_logging

        cfg = load_config(args.config, args.overrides)
        setup_logging(args.log_level or cfg.logging.level, sys.stderr)
        if args.command == "check-config":
            return _check(cfg, syntax_only=args.syntax_only, broker=not args.no_broker, path=args.config)
        return _run(cfg, until_sources_end=args.until_sources_end, path=args.config, overrides=args.overrides,
                    log_level_fixed=args.log_level is not None)
    except OvedgeError as exc:
        for line in str(exc).splitlines():  # one line per problem (a config can have several)
            print(f"ovedged: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _run(cfg: object, *, until_sources_end: bool, path: Path, overrides: Sequence[str],
         log_level_fixed: bool) -> int:
    from daemon.app import Daemon
    from daemon.config import DaemonConfig

    assert isinstance(cfg, DaemonConfig)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    previous: dict[signal.Signals, Callable[..., object] | int | None] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, on_signal)
    try:
        return Daemon(cfg, until_sources_end=until_sources_end, config_path=path, overrides=overrides,
                      log_level_fixed=log_level_fixed).run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _export_review(config: Path, out: Path, *, cameras: Sequence[str], since: datetime | None, force: bool) -> int:
    from daemon.config import load_config
    from daemon.review import NothingKeptError, UnknownCamerasError, collect, write_cvat_task

    cfg = load_config(config)
    unknown = sorted(set(cameras) - {c.id for c in cfg.cameras})
    if unknown:
        raise UnknownCamerasError(unknown, [c.id for c in cfg.cameras], config)
    kept, skipped = collect(cfg.state_dir(), cameras=cameras, since=since)
    n = write_cvat_task(kept, out, name=f"{cfg.station.name} review", force=force) if kept else 0
    if n == 0:
        raise NothingKeptError(cfg.state_dir())
    left_out = skipped + len(kept) - n  # unreadable, or expired before or while packing
    print(f"{out}: {n} frame(s) kept for re-labelling, as a CVAT for images 1.1 task"
          + (f" ({left_out} left out: image expired or unreadable)" if left_out else ""))
    return 0


def _check(cfg: object, *, syntax_only: bool, broker: bool, path: Path) -> int:
    from daemon.config import DaemonConfig
    from daemon.spool import check_state_dir

    assert isinstance(cfg, DaemonConfig)
    print(f"config {path}: valid ({len(cfg.cameras)} camera(s))")
    if syntax_only:
        return 0
    print(f"state: {check_state_dir(cfg.state_dir(), cfg.spool)}")
    if cfg.mqtt.tls is not None or cfg.mqtt.username is not None:
        from daemon.security import check_security

        print(f"mqtt security: {check_security(cfg)} (TLS files and password read)")
    import openvino as ov

    from daemon.preflight import ModelLoader, run_preflight

    run_preflight(cfg, ModelLoader(cfg, ov.Core()), broker=broker, report=print)
    print("all checks passed" if broker else "all checks passed (broker not checked: --no-broker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
