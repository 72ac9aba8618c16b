"""``vo jobs``: submit, watch, get, list and cancel durable jobs on a running server."""

from __future__ import annotations

import argparse
import os

from vo.cli.common import UsageError, services, stderr, writable_output
from vo.cli.render import add_render_options, build_spec, check_succeeded, follow
from vo.client.pipeline import PipelineClient, state_name
from vo.pipeline.v1 import pipeline_service_pb2 as pb


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo jobs`` and its subcommands."""
    jobs = subparsers.add_parser("jobs", help="durable jobs on a running `vo serve`")
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    submit = sub.add_parser("submit", help="queue a render job; prints its id on the last line")
    submit.add_argument("input", help="the landscape video (uploaded)")
    add_render_options(submit)
    submit.set_defaults(handler=run_submit)

    for name, text in (
        ("watch", "stream a job's progress until it ends"),
        ("cancel", "stop a job"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("id", help="the job id")
        _server(p)
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(handler=run_watch if name == "watch" else run_cancel)

    get = sub.add_parser("get", help="a job's state; -o downloads its output")
    get.add_argument("id", help="the job id")
    get.add_argument("-o", "--output", default="", help="download the finished video here")
    _server(get)
    get.set_defaults(handler=run_get)

    ls = sub.add_parser("list", help="jobs, newest first")
    ls.add_argument("--state", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    ls.add_argument("--project", default="")
    ls.add_argument("--limit", type=int, default=20)
    _server(ls)
    ls.set_defaults(handler=run_list)


def _server(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        metavar="HOST:PORT",
        default=os.environ.get("VO_SERVER", ""),
        help="the `vo serve` to talk to (or $VO_SERVER)",
    )


def _need_server(args: argparse.Namespace) -> str:
    if not args.server:
        raise UsageError("vo jobs needs --server HOST:PORT (a running `vo serve`)")
    return str(args.server)


def _describe(job: pb.Job) -> str:
    steps = " ".join(
        f"{s.name}:{pb.Step.State.Name(s.state).removeprefix('STATE_').lower()}" for s in job.steps
    )
    text = f"{job.id} {state_name(job.state)} {job.progress.fraction * 100:.0f}% [{steps}]"
    if job.state == pb.Job.STATE_FAILED:
        text += f" {job.error.step}: {job.error.code}: {job.error.message}"
    return text


def run_submit(args: argparse.Namespace) -> int:
    """Handle ``vo jobs submit``: the job id alone on the last line of stdout."""
    _need_server(args)
    with services(args.server) as svc, PipelineClient.connect(svc.target) as client:
        job = client.create(
            build_spec(args, svc, client), project_id=args.project, request_id=args.request_id
        )
    print(job.id)
    return 0


def run_watch(args: argparse.Namespace) -> int:
    """Handle ``vo jobs watch``: 0 when the job succeeds, 1 with the reason otherwise."""
    with PipelineClient.connect(_need_server(args)) as client:
        job = follow(client.watch(args.id), args.quiet)
    check_succeeded(job)
    stderr.print(f"job {job.id} succeeded: output {job.output.sha256}")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    """Handle ``vo jobs cancel``."""
    with PipelineClient.connect(_need_server(args)) as client:
        print(_describe(client.cancel(args.id)))
    return 0


def run_get(args: argparse.Namespace) -> int:
    """Handle ``vo jobs get``."""
    output = writable_output(args.output, (".mp4", ".m4v", ".mov")) if args.output else None
    with PipelineClient.connect(_need_server(args)) as client:
        job = client.get(args.id)
        print(_describe(job))
        if output is not None:
            check_succeeded(job)
            client.download(job.output.sha256, output)
            stderr.print(f"wrote {output}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Handle ``vo jobs list``."""
    state = pb.Job.State.Value(f"STATE_{args.state.upper()}") if args.state else 0
    with PipelineClient.connect(_need_server(args)) as client:
        page = client.list(project_id=args.project, state=state, page_size=args.limit)
    for job in page.jobs:
        print(_describe(job))
    return 0
