"""Pipeline benchmark: a whole job against its render alone, cached re-renders, per-operation
latency, and CreateJob throughput, all against a real `vo serve` with process workers.

Usage: python bench/pipeline.py [--runs 20] [--pipeline-runs 5] [--quick]

1. Full pipeline on the 30 s 1920x1080 clip (bench/out/landscape_30s_1080p.mp4): an
   extractive script from a built-in ~300-word article, TTS, cues, smart reframe to 1080x1920,
   karaoke captions, ducked voice-over with loudness normalisation; wall time from submit
   (PipelineService.Render) to SUCCEEDED. Against it, the render alone: VideoService.Render
   with the same RenderRequest the pipeline builds (same script, voice, cues), prepared once
   and untimed. Each pipeline run reads a fresh copy of the input so the pipeline's render
   cache (keyed by path, size and mtime) never hits, and a topic of its own, so the script
   and TTS are made afresh rather than read from the cache; runs alternate with the render
   alone.
   Target: pipeline / render alone <= 1.5.
2. Cached re-render: the last job's spec submitted again (new request_id, same input file);
   the render step must come back CACHED. Target: < 1 s from submit to SUCCEEDED.
3. Latency (P50/P95/P99) of script, TTS, subtitles, reframe, ramp and the full pipeline on a
   10 s 1280x720 clip, --runs each (--quick: 3).
4. CreateJob throughput: 8 asyncio clients, each on its own channel, create jobs for ~5 s
   against a second `vo serve` (one worker, a 100,000-job queue, a throwaway data folder).
   Target: >= 200 jobs/s.

Everything runs on this machine: the numbers move with whatever else loads the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
from common import OUT, VO, alternate, table
from reframe import make_inputs
from vo.client.channel import CHANNEL_OPTIONS
from vo.client.pipeline import TERMINAL_STATES, AsyncPipelineClient, PipelineClient, state_name
from vo.client.script import ScriptClient, final_script
from vo.client.subtitle import SubtitleClient
from vo.client.tts import TtsClient, final_result
from vo.client.video import VideoClient
from vo.common.v1 import common_pb2
from vo.events import duration_to_seconds, seconds_to_duration
from vo.pipeline.v1 import pipeline_service_pb2 as ppb
from vo.script.v1 import script_service_pb2 as spb
from vo.tts.v1 import tts_service_pb2 as tpb
from vo.video.v1 import video_service_pb2 as vpb
from vo_pipeline.dag import (
    CAPTION_RULES,
    DEFAULT_RATE,
    VOICE_MARGIN_SECONDS,
    default_target_duration,
)

ARTICLE = (
    "For decades, cities buried their small rivers. Streams that once ran through valleys were "
    "pushed into concrete culverts and paved over to make room for roads, car parks and "
    "housing. Now a growing number of cities are digging them back up. The practice, known as "
    "daylighting, returns a buried stream to the open air. The best known example is Seoul, "
    "where an elevated motorway was torn down in 2005 to reopen the Cheonggyecheon stream. "
    "Traffic did not collapse as critics had warned. Instead, the corridor became one of the "
    "most visited places in the city, and summer temperatures along the water dropped by "
    "several degrees compared with nearby streets. Smaller projects tell a similar story. In "
    "Zurich, more than twenty kilometres of buried brooks have been reopened since the 1980s, "
    "partly to take clean water out of overloaded sewers. In Yonkers, New York, the Saw Mill "
    "River now flows through a downtown park, and young eels have been counted swimming "
    "upstream for the first time in generations. Engineers point to practical benefits. An "
    "open channel carries floodwater more safely than an old pipe, and wetland plants filter "
    "pollution before it reaches larger rivers. Property values near restored streams often "
    "rise. Daylighting is not cheap, however. Moving utilities, buying land and rebuilding "
    "bridges can cost millions, and some streams are too polluted to open without first "
    "fixing the sewers that feed them. Residents also worry about mosquitoes, smells and the "
    "loss of parking. Planners say the key is to start with the sewer work and to involve "
    "neighbours early. When a city gets it right, a forgotten river becomes a public space, a "
    "flood defence and a habitat at the same time. Researchers now map old river routes from "
    "historic maps to find the next candidates for restoration."
)
TOPIC = "daylighting buried city rivers"

TTS_TEXT = (
    "Cities are digging up the rivers they buried decades ago. Open streams carry floodwater "
    "safely, cool the streets in summer, and give fish a way home again."
)  # ~30 words
CUES_TEXT = (
    "For decades, cities buried their small rivers in concrete culverts and paved over them to "
    "make room for roads and car parks. Now a growing number of cities are digging them back "
    "up. Seoul tore down an elevated motorway to reopen the Cheonggyecheon stream, and the "
    "corridor became one of the most visited places in the city. Zurich has reopened more than "
    "twenty kilometres of buried brooks since the nineteen eighties."
)  # ~80 words

RUN_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")

IN_DIR = OUT / "pipeline_inputs"
CLIP10 = OUT / "landscape_10s_720p.mp4"


# -- servers ------------------------------------------------------------------------------


@contextmanager
def vo_serve(data_dir: Path, log: Path, **env: str) -> Iterator[tuple[str, int]]:
    """A `vo serve` subprocess on a free port (process workers); yields its target and pid."""
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    full_env = {
        **os.environ,
        "VO_PIPELINE_WORKER_MODE": "process",
        "VO_GRACE_SECONDS": "2",
        **env,
    }
    argv = [VO, "serve", "--port", "0", "--data-dir", str(data_dir), "--allow-path", str(OUT)]
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=full_env, text=True)
        try:
            line = _read_line(proc, timeout=120)
            if " on " not in line:
                raise SystemExit(f"vo serve did not start (see {log}): {line!r}")
            target = line.rsplit(" on ", 1)[1].split()[0].rstrip(",")
            yield target, proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(data_dir, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else ""


# -- specs and the pipeline ---------------------------------------------------------------


def render_spec() -> vpb.RenderSpec:
    """Smart reframe to 1080x1920, karaoke captions, ducked and normalised voice-over."""
    return vpb.RenderSpec(
        reframe=vpb.ReframeSpec(mode=vpb.ReframeSpec.MODE_SMART, width=1080, height=1920),
        captions=vpb.CaptionSpec(style=vpb.CaptionSpec.STYLE_KARAOKE),
        audio=vpb.AudioMixSpec(duck_db=12, normalize=True),
        encoder=vpb.EncoderSpec(preset="veryfast", crf=23),
    )


def job_spec(video: Path, topic: str = TOPIC) -> ppb.JobSpec:
    return ppb.JobSpec(
        input=common_pb2.MediaSource(uri=str(video)),
        topic=topic,
        source_text=ARTICLE,
        script_engine="extractive",
        render=render_spec(),
    )


def fresh_copy(src: Path, tag: str) -> Path:
    """A new file with the same content (new path and mtime: the render cache misses)."""
    IN_DIR.mkdir(parents=True, exist_ok=True)
    dst = IN_DIR / f"{src.stem}_{tag}_{uuid.uuid4().hex[:8]}{src.suffix}"
    shutil.copyfile(src, dst)
    return dst


def run_job(client: PipelineClient, spec: ppb.JobSpec) -> tuple[float, ppb.Job]:
    """Submit through PipelineService.Render; wall seconds to the final state, and the job."""
    start = time.perf_counter()
    last: ppb.Job | None = None
    for event in client.render(spec, request_id=uuid.uuid4().hex):
        if isinstance(event, ppb.Job):
            last = event
            if event.state in TERMINAL_STATES:
                break
    elapsed = time.perf_counter() - start
    if last is None or last.state != ppb.Job.STATE_SUCCEEDED:
        why = f"{last.error.step}: {last.error.code} {last.error.message}" if last else "no job"
        state = state_name(last.state) if last else "?"
        raise SystemExit(f"pipeline job ended {state}: {why}")
    return elapsed, last


def steps_of(job: ppb.Job) -> dict[str, tuple[str, float]]:
    """Each step's state name and elapsed seconds."""
    return {
        s.name: (
            ppb.Step.State.Name(s.state).removeprefix("STATE_").lower(),
            duration_to_seconds(s.elapsed),
        )
        for s in job.steps
    }


def render_alone_request(target: str, spec: ppb.JobSpec) -> vpb.RenderRequest:
    """The RenderRequest the pipeline's DAG builds for ``spec``, made by calling the services
    the same way the DAG does (script -> TTS, sped up if too long -> cues)."""
    with (
        VideoClient.connect(target) as video,
        ScriptClient.connect(target) as script_client,
        TtsClient.connect(target) as tts,
        SubtitleClient.connect(target) as subs,
    ):
        info = video.probe(spec.input)
        seconds = duration_to_seconds(info.duration)
        filled = ppb.JobSpec()
        filled.CopyFrom(spec)
        default_target_duration(filled, seconds)
        request = spb.WriteScriptRequest(
            topic=filled.topic, source_text=filled.source_text, engine=filled.script_engine
        )
        request.target_duration.CopyFrom(filled.target_duration)
        script = final_script(script_client.write_request(request))
        room = seconds - VOICE_MARGIN_SECONDS
        result = final_result(
            tts.synthesize_request(tpb.SynthesizeRequest(text=script.text, voice=spec.voice))
        )
        spoken = duration_to_seconds(result.duration)
        if spoken > room:
            rate = int(np.ceil(DEFAULT_RATE * spoken / room))
            result = final_result(
                tts.synthesize_request(
                    tpb.SynthesizeRequest(text=script.text, voice=spec.voice, rate=rate)
                )
            )
        cues = subs.build_cues(list(result.words), CAPTION_RULES)
    render = vpb.RenderSpec()
    render.CopyFrom(spec.render)
    render.captions.cues.extend(cues)
    render.audio.voice.CopyFrom(common_pb2.MediaSource(upload_sha256=result.audio.sha256))
    render.audio.normalize = True
    return vpb.RenderRequest(input=spec.input, spec=render)


def run_render(video: VideoClient, request: vpb.RenderRequest) -> tuple[float, vpb.RenderResult]:
    start = time.perf_counter()
    result: vpb.RenderResult | None = None
    for event in video.render(request):
        if isinstance(event, vpb.RenderResult):
            result = event
    elapsed = time.perf_counter() - start
    assert result is not None
    return elapsed, result


# -- statistics ---------------------------------------------------------------------------


def pct(values: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
    return float(p50), float(p95), float(p99)


def fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def markdown(rows: list[list[str]]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


# -- the parts ----------------------------------------------------------------------------


def latency_table(
    target: str, runs: int, quick: bool
) -> tuple[list[list[str]], dict[str, list[float]]]:
    """Part 3: N timed calls of each operation, each after one untimed warm-up call (--quick
    skips the reframe's: the ramp before it has warmed the video service)."""
    times: dict[str, list[float]] = {}
    pipeline = PipelineClient.connect(target)
    video = VideoClient.connect(target)
    script_client = ScriptClient.connect(target)
    tts = TtsClient.connect(target)
    subs = SubtitleClient.connect(target)
    try:
        cue_words = list(final_result(tts.synthesize(CUES_TEXT)).words)
        ramp = vpb.SpeedRamp(ease_duration=seconds_to_duration(0))
        for t, v in ((0, 1.0), (4, 0.5), (6, 2.0)):
            ramp.points.append(vpb.SpeedPoint(source_offset=seconds_to_duration(t), speed=v))
        ramp_request = vpb.RenderRequest(
            input=common_pb2.MediaSource(uri=str(CLIP10)),
            spec=vpb.RenderSpec(ramp=ramp, encoder=vpb.EncoderSpec(preset="veryfast", crf=23)),
        )

        def script_op(i: int) -> None:
            final_script(
                script_client.write(TOPIC, source_text=ARTICLE, duration=30, engine="extractive")
            )

        def tts_op(i: int) -> None:
            if final_result(tts.synthesize(f"{TTS_TEXT} Run {i}.")).cached:
                print(f"  note: TTS run {i} came from the cache")

        def cues_op(i: int) -> None:
            subs.build_cues(cue_words)

        def reframe_op(i: int) -> None:
            for _ in video.reframe(CLIP10, mode="center", width=1080, height=1920):
                pass

        def ramp_op(i: int) -> None:
            run_render(video, ramp_request)

        # A new copy of the input per run (made here, untimed) so the render cache misses.
        copies = {i: fresh_copy(CLIP10, f"lat{i}") for i in range(-1, runs)}

        def pipeline_op(i: int) -> None:
            _, job = run_job(pipeline, job_spec(copies[i]))
            states = steps_of(job)
            if states.get("render", ("",))[0] != "succeeded":
                print(f"  note: full pipeline run {i}: render step {states.get('render')}")

        ops: dict[str, Callable[[int], None]] = {
            "script (WriteScript extractive, 30 s)": script_op,
            "TTS (Synthesize ~30 words, uncached)": tts_op,
            "subtitles (BuildCues ~80 words)": cues_op,
            "ramp (Render, 3 segments, 10 s 720p)": ramp_op,
            "reframe (center, 10 s 720p -> 1080x1920)": reframe_op,
            "full pipeline (10 s 720p, smart 1080x1920)": pipeline_op,
        }
        for name, op in ops.items():
            warm = not (quick and op is reframe_op)
            print(f"  {name}: {'warm-up + ' if warm else ''}{runs} runs", flush=True)
            if warm:
                op(-1)
            times[name] = []
            for i in range(runs):
                start = time.perf_counter()
                op(i)
                times[name].append(time.perf_counter() - start)
    finally:
        for c in (pipeline, video, script_client, tts, subs):
            c.close()
    rows = [["operation", "P50", "P95", "P99", "runs"]]
    for name, values in times.items():
        p50, p95, p99 = pct(values)
        rows.append([name, fmt_s(p50), fmt_s(p95), fmt_s(p99), str(len(values))])
    return rows, times


def pipeline_vs_render(
    target: str, rounds: int, warmup: bool
) -> tuple[dict[str, list[float]], ppb.JobSpec, list[dict[str, tuple[str, float]]], bool | None]:
    """Part 1: alternate a full pipeline job and the render alone on the 30 s clip."""
    clip, _ = make_inputs(long=False)
    print("  preparing the render alone (script, TTS, cues through the services; untimed)")
    request = render_alone_request(target, job_spec(clip))
    pipeline = PipelineClient.connect(target)
    video = VideoClient.connect(target)
    steps: list[dict[str, tuple[str, float]]] = []
    state: dict[str, object] = {}
    run_numbers = itertools.count()

    def full() -> tuple[float, float]:
        # A new topic word each run changes the script's hook and call to action, so the
        # script and TTS steps do their work instead of coming from the cache.
        n = next(run_numbers)
        topic = f"{TOPIC} {RUN_WORDS[n % len(RUN_WORDS)]} {n}"
        spec = job_spec(fresh_copy(clip, "p"), topic=topic)
        seconds, job = run_job(pipeline, spec)
        steps.append(steps_of(job))
        state["spec"], state["job"] = spec, job
        return seconds, 0.0

    def alone() -> tuple[float, float]:
        seconds, result = run_render(video, request)
        state["alone"] = result
        return seconds, 0.0

    contenders = {"full pipeline (Render RPC)": full, "render alone (VideoService)": alone}
    print("  (the MB column of the rounds is not measured here)")
    try:
        if warmup:
            print("  warm-up round (discarded)")
            full()
            alone()
            steps.clear()
        timings = alternate(contenders, {name: rounds for name in contenders})
    finally:
        pipeline.close()
        video.close()
    job: ppb.Job = state["job"]  # type: ignore[assignment]
    alone_result: vpb.RenderResult = state["alone"]  # type: ignore[assignment]
    same = job.output.sha256 == alone_result.artifact.sha256 if job.output.sha256 else None
    if not same:
        print(
            f"  note: outputs differ: pipeline {job.output.sha256[:12]} {job.output.size_bytes} B, "
            f"render alone {alone_result.artifact.sha256[:12]} {alone_result.artifact.size_bytes} B"
        )
    spec: ppb.JobSpec = state["spec"]  # type: ignore[assignment]
    return {k: v.seconds for k, v in timings.items()}, spec, steps, same


def cached_rerender(target: str, spec: ppb.JobSpec, runs: int) -> tuple[list[float], list[str]]:
    """Part 2: the same spec again, same input file, new request ids."""
    seconds: list[float] = []
    render_states: list[str] = []
    with PipelineClient.connect(target) as pipeline:
        for _ in range(runs):
            s, job = run_job(pipeline, spec)
            seconds.append(s)
            render_states.append(steps_of(job).get("render", ("missing", 0.0))[0])
            print(f"  cached re-render: {s * 1000:.0f} ms, steps {steps_of(job)}", flush=True)
    return seconds, render_states


async def create_throughput(
    target: str, clients: int, seconds: float
) -> tuple[int, float, list[float], int]:
    """Part 4: ``clients`` asyncio clients, one channel each, CreateJob until time is up."""
    spec = job_spec(CLIP10)
    options = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(clients)]
    stubs = [AsyncPipelineClient(ch) for ch in channels]
    latencies: list[float] = []
    errors = 0
    # One warm call per channel (connection set-up is not what is measured).
    await asyncio.gather(*(s.create(spec, request_id=uuid.uuid4().hex) for s in stubs))
    deadline = 0.0

    async def loop(stub: AsyncPipelineClient) -> int:
        nonlocal errors
        n = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await stub.create(spec, request_id=uuid.uuid4().hex)
            except Exception as exc:  # report, keep going
                errors += 1
                if errors <= 3:
                    print(f"  CreateJob error: {exc}")
                continue
            latencies.append(time.perf_counter() - t0)
            n += 1
        return n

    start = time.perf_counter()
    deadline = start + seconds
    counts = await asyncio.gather(*(loop(s) for s in stubs))
    elapsed = time.perf_counter() - start
    for ch in channels:
        await ch.close()
    return sum(counts), elapsed, latencies, errors


def finished_jobs(target: str) -> dict[str, int]:
    """How many jobs the server holds, by state (first 1000 pages' worth)."""
    counts: dict[str, int] = {}
    with PipelineClient.connect(target) as client:
        token = ""
        for _ in range(100):
            page = client.list(page_size=1000, page_token=token)
            for job in page.jobs:
                name = state_name(job.state)
                counts[name] = counts.get(name, 0) + 1
            token = page.next_page_token
            if not token:
                break
    return counts


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per latency-table operation")
    parser.add_argument(
        "--pipeline-runs", type=int, default=5, help="rounds of pipeline vs render alone (30 s)"
    )
    parser.add_argument("--cached-runs", type=int, default=5, help="cached re-renders")
    parser.add_argument("--throughput-seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 runs, 1 round, no warm-up round")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.pipeline_runs, args.cached_runs = 3, 1, 3
    began = time.perf_counter()

    make_inputs(long=False)
    if not CLIP10.exists():
        print(f"generating {CLIP10} ...", flush=True)
        from vo_video.samples import write_sample

        write_sample(CLIP10, duration=10, width=1280, height=720, fps=30)
    shutil.rmtree(IN_DIR, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f} on {os.cpu_count()} CPUs (numbers are noisy)")

    env = {"VO_PIPELINE_MIN_WORKERS": "1", "VO_PIPELINE_MAX_WORKERS": "1"}
    with vo_serve(OUT / "pipeline_data", OUT / "pipeline_serve.log", **env) as (target, _):
        print(f"\n[3] latency, {args.runs} runs each (vo serve at {target}, 1 process worker)")
        rows, _ = latency_table(target, args.runs, args.quick)

        print(f"\n[1] full pipeline vs render alone, 30 s 1080p, {args.pipeline_runs} rounds")
        t1, spec, steps, same = pipeline_vs_render(target, args.pipeline_runs, not args.quick)

        print(f"\n[2] cached re-render, {args.cached_runs} runs")
        cached, render_states = cached_rerender(target, spec, args.cached_runs)

    print(f"\n[4] CreateJob throughput, {args.clients} clients, {args.throughput_seconds:.0f} s")
    env4 = {
        "VO_PIPELINE_MIN_WORKERS": "1",
        "VO_PIPELINE_MAX_WORKERS": "1",
        "VO_PIPELINE_MAX_QUEUE_SIZE": "100000",
    }
    with vo_serve(OUT / "pipeline_tp_data", OUT / "pipeline_tp_serve.log", **env4) as (
        target,
        pid,
    ):
        cpu0 = cpu_seconds(pid)
        created, elapsed, latencies, errors = asyncio.run(
            create_throughput(target, args.clients, args.throughput_seconds)
        )
        server_cpu = cpu_seconds(pid) - cpu0
        by_state = finished_jobs(target)
    shutil.rmtree(IN_DIR, ignore_errors=True)

    # -- report ---------------------------------------------------------------------------
    full = t1["full pipeline (Render RPC)"]
    alone = t1["render alone (VideoService)"]
    ratio = float(np.median(full)) / float(np.median(alone))
    print("\n== 1. full pipeline vs render alone (30 s 1920x1080 -> 1080x1920 smart) ==")
    print(
        table(
            [
                ["contender", "median s", "min s", "max s", "runs"],
                *(
                    [name, f"{np.median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}", str(len(v))]
                    for name, v in t1.items()
                ),
            ]
        )
    )
    names = list(steps[0]) if steps else []
    step_cells = [
        f"{n} {steps[0][n][0]} {np.median([s[n][1] for s in steps if n in s]):.2f} s" for n in names
    ]
    print("pipeline steps (median of the job's own step times): " + ", ".join(step_cells))
    if same is not None:
        print(f"pipeline output identical to the render alone: {'yes' if same else 'NO'}")

    print("\n== 2. cached re-render (same spec and input, new request_id) ==")
    print(
        f"median {np.median(cached) * 1000:.0f} ms, max {max(cached) * 1000:.0f} ms; "
        f"render step: {', '.join(render_states)}"
    )

    print("\n== 3. latency ==")
    print(markdown(rows))

    rate = created / elapsed
    print("\n== 4. CreateJob throughput ==")
    lat = pct(latencies) if latencies else (0.0, 0.0, 0.0)
    print(
        f"{created} jobs in {elapsed:.2f} s by {args.clients} clients = {rate:.0f} jobs/s; "
        f"errors {errors}; CreateJob latency P50 {lat[0] * 1000:.1f} ms, P95 "
        f"{lat[1] * 1000:.1f} ms, P99 {lat[2] * 1000:.1f} ms; jobs by state after: {by_state}"
    )
    print(
        f"server process CPU: {server_cpu:.2f} s over the window (includes the 8 warm-up calls) "
        f"= {server_cpu / max(created + args.clients, 1) * 1000:.1f} ms per CreateJob, so at "
        f"most ~{(os.cpu_count() or 1) * max(created + args.clients, 1) / max(server_cpu, 1e-9):.0f}"
        f" jobs/s on {os.cpu_count()} CPUs"
    )

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    cached_ok = max(cached) < 1.0 and all(s == "cached" for s in render_states)
    print("\n== summary ==")
    print(
        table(
            [
                ["target", "measured", "result"],
                ["pipeline / render alone <= 1.5", f"{ratio:.2f}", verdict(ratio <= 1.5)],
                [
                    "cached re-render < 1 s, render CACHED",
                    f"max {max(cached) * 1000:.0f} ms, {'/'.join(sorted(set(render_states)))}",
                    verdict(cached_ok),
                ],
                ["CreateJob >= 200 jobs/s", f"{rate:.0f}/s", verdict(rate >= 200)],
            ]
        )
    )
    print(
        f"\ntotal {time.perf_counter() - began:.0f} s; load average now "
        f"{os.getloadavg()[0]:.2f} (started at {load:.2f}); server logs in "
        f"{OUT / 'pipeline_serve.log'} and {OUT / 'pipeline_tp_serve.log'}"
    )


if __name__ == "__main__":
    sys.exit(main())
