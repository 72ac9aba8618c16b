"""``vo serve``: every service on one port."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vo.cli.common import UsageError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo serve``."""
    p = subparsers.add_parser(
        "serve",
        help="run every vo service on one port",
        description="Serve Video, TTS, Subtitle, Script and Pipeline services on one gRPC port, "
        "with health checking and reflection.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=4545, help="port to listen on (0 picks one)")
    p.add_argument(
        "--data-dir",
        default="",
        help="uploads, artifacts and state (default $VO_DATA_DIR or ~/.local/share/vo)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics on this port (0: any free port; default $VO_METRICS_PORT or none)",
    )
    p.add_argument(
        "--allow-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder clients may name inputs and outputs in by path (repeatable; default: the data dir)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``vo serve``."""
    try:
        from vo_core.config import ServerSettings
    except ImportError as exc:
        raise UsageError(
            f"the services are not installed here ({exc.name}); install vo[embedded]"
        ) from None
    import dataclasses

    settings = ServerSettings.from_env()
    data_dir = Path(args.data_dir).expanduser().resolve() if args.data_dir else settings.data_dir
    roots = tuple(Path(p).expanduser().resolve() for p in args.allow_path)
    settings = dataclasses.replace(
        settings,
        host=args.host,
        port=args.port,
        data_dir=data_dir,
        input_roots=roots or settings.input_roots,
        output_roots=roots or settings.output_roots,
        metrics_port=settings.metrics_port if args.metrics_port is None else args.metrics_port,
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    if settings.metrics_port >= 0:
        share_metrics_with_workers(data_dir / "metrics")
    from vo_pipeline.mesh import serve_forever  # after the line above: metrics are made on import

    serve_forever(settings)
    return 0


def share_metrics_with_workers(folder: Path) -> None:
    """Let the pipeline's worker processes report through this server's ``/metrics``.

    prometheus_client's multiprocess mode keeps each process's samples in files in ``folder``
    and adds them up when scraped. It must be chosen before any metric is created, and the
    files of a previous run must go.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(folder))
