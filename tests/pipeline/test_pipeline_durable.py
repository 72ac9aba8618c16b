"""Durability with real processes: SIGKILL the server mid-render, kill a worker, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from cliutil import VO, vo
from mediacheck import decode
from pipeline.pipeline_helpers import ARTICLE
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo.pipeline.v1 import pipeline_service_pb2_grpc
from vo_video.samples import write_sample


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels`` (any order, any process)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`vo serve` as a real process with process workers."""

    def __init__(self, data: Path, allow: Path, port: int, **env: str) -> None:
        self.port = port
        environ = {
            **os.environ,
            "VO_PIPELINE_WORKER_MODE": "process",
            "VO_PIPELINE_MIN_WORKERS": "1",
            **env,
        }
        self.proc = subprocess.Popen(
            [
                VO,
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data),
                "--allow-path",
                str(allow),
                "--metrics-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environ,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "serving" in line, line
        self.target = f"127.0.0.1:{port}"
        self.metrics_port = int(line.split("metrics on :")[1].split("/")[0])

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        return urllib.request.urlopen(url, timeout=10).read().decode()

    def stub(self) -> pipeline_service_pb2_grpc.PipelineServiceStub:
        return pipeline_service_pb2_grpc.PipelineServiceStub(grpc.insecure_channel(self.target))

    def workers(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-ww", "--ppid", str(self.proc.pid), "-o", "pid=,args="],
            capture_output=True,
            text=True,
        ).stdout
        return [
            int(line.split()[0])
            for line in out.splitlines()
            if "spawn_main" in line and "resource_tracker" not in line
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("durable") / "clip.mp4"
    write_sample(path, duration=16.0, width=640, height=360)
    return path


def wait_for_render(
    stub: pipeline_service_pb2_grpc.PipelineServiceStub, job_id: str, frames: int, attempt: int = 1
) -> pb.Job:
    """Poll until the given attempt of the job is rendering past ``frames`` frames."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = stub.GetJob(pb.GetJobRequest(id=job_id)).job
        if job.state in (pb.Job.STATE_SUCCEEDED, pb.Job.STATE_FAILED, pb.Job.STATE_CANCELLED):
            raise AssertionError(f"the job ended before the render got going: {job.error}")
        p = job.progress
        if job.attempts == attempt and p.stage.startswith("render") and p.frames_done >= frames:
            return job
        time.sleep(0.2)
    raise AssertionError("the render did not start in time")


def final(stub: pipeline_service_pb2_grpc.PipelineServiceStub, job_id: str) -> pb.Job:
    last = None
    for event in stub.WatchJob(pb.WatchJobRequest(id=job_id), timeout=240):
        if event.HasField("job"):
            last = event.job
    assert last is not None
    return last


@pytest.fixture
def article(tmp_path: Path) -> Path:
    path = tmp_path / "article.txt"
    path.write_text(ARTICLE)
    return path


def submit(server: Server, clip: Path, article: Path) -> str:
    r = vo(
        "jobs",
        "submit",
        str(clip),
        "--server",
        server.target,
        "--topic",
        "bees",
        "--source",
        str(article),
        "--size",
        "720x1280",
        "--preset",
        "medium",
        "--reframe",
        "center",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_sigkill_mid_render_then_restart_resumes_from_the_last_step(
    long_clip: Path, article: Path, tmp_path: Path
) -> None:
    data, port = tmp_path / "data", free_port()
    server = Server(data, long_clip.parent.parent, port)
    try:
        job_id = submit(server, long_clip, article)
        running = wait_for_render(server.stub(), job_id, frames=30)
        before = {s.name: (s.state, s.elapsed.ToNanoseconds()) for s in running.steps}
        assert before["tts"][0] == pb.Step.STATE_SUCCEEDED
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        time.sleep(1.0)  # its workers notice the broken pipe and exit
    finally:
        server.stop()
    restarted = Server(data, long_clip.parent.parent, port)
    try:
        done = final(restarted.stub(), job_id)
        assert done.state == pb.Job.STATE_SUCCEEDED, done.error
        assert done.attempts == 2
        after = {s.name: (s.state, s.elapsed.ToNanoseconds()) for s in done.steps}
        for step in ("script", "tts", "cues"):
            assert after[step] == before[step], f"{step} ran again instead of resuming"
        outputs = list((data / "artifacts").rglob("*.mp4"))
        assert [p.name.split(".")[0] for p in outputs].count(done.output.sha256) == 1
        assert not list((data / "artifacts" / "tmp").iterdir()), "partial files left behind"
        out = tmp_path / "short.mp4"
        r = vo("jobs", "get", job_id, "--server", restarted.target, "-o", str(out))
        assert r.returncode == 0 and "succeeded" in r.stdout, r.stderr
        assert decode(out).frames == 480
        r = vo("jobs", "watch", job_id, "--server", restarted.target, "--quiet")
        assert r.returncode == 0
        # The render ran in a worker process; its metrics reach the server's /metrics.
        text = restarted.metrics()
        assert sample(text, "video_processing_duration_seconds_count", operation="render") >= 1
        assert (
            sample(
                text,
                "grpc_server_handled_total",
                grpc_service="vo.video.v1.VideoService",
                grpc_method="Render",
                grpc_code="OK",
            )
            >= 1
        )
        assert sample(text, "jobs", state="succeeded") >= 1
    finally:
        restarted.stop()


def test_killed_worker_is_replaced_and_the_job_fails_after_its_attempts(
    long_clip: Path, article: Path, tmp_path: Path
) -> None:
    server = Server(
        tmp_path / "data", long_clip.parent.parent, free_port(), VO_PIPELINE_MAX_ATTEMPTS="2"
    )
    try:
        job_id = submit(server, long_clip, article)
        for attempt in (1, 2):
            wait_for_render(server.stub(), job_id, frames=15, attempt=attempt)
            workers = server.workers()
            assert workers, "no worker process found"
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        done = final(server.stub(), job_id)
        assert done.state == pb.Job.STATE_FAILED
        assert (
            "worker process died" in done.error.message
            and "gave up after 2 attempts" in done.error.message
        )
        r = vo("jobs", "watch", job_id, "--server", server.target, "--quiet")
        assert r.returncode == 1 and "failed in step render" in r.stderr
        # The pool replaced the dead workers: a new job runs.
        spare = vo("jobs", "list", "--server", server.target, "--state", "failed")
        assert job_id in spare.stdout
        deadline = time.monotonic() + 20
        while not server.workers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.workers(), "dead workers were not replaced"
    finally:
        server.stop()
