"""Full-render benchmark: one `Render` call against the ffmpeg CLI doing the same work.

Usage: python bench/render.py [--runs 3]

On a generated 30 s 1920x1080 clip: centre reframe to 1080x1920, a 3-segment speed ramp
(0:1, 10:0.5, 15:2), a voice-over (eSpeak, via vo's TTS) with ducking, loudness normalisation
to -14 LUFS, libx264 veryfast crf 23, AAC 128k. vo also burns in karaoke captions timed to the
voice's words; the ffmpeg CLI side has no captions (Debian's ffmpeg has libass, but vo's
karaoke look cannot be reproduced exactly), so vo does strictly more work. A second vo run
without captions measures what captions cost. Runs alternate; medians and ratios are printed.
Then the peak memory (RSS) of the same full render, each in a process of its own, on the 30 s
clip and on a 5-minute one: it must not grow with the input's length.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import ENCODER_ARGS, OUT, alternate, ffmpeg_binary, run_child, table
from reframe import make_inputs
from vo.client import VideoClient
from vo.client.tts import TtsClient, final_result
from vo.common.v1 import common_pb2
from vo.events import seconds_to_duration
from vo.video.v1 import video_service_pb2 as pb
from vo_pipeline.mesh import EmbeddedMesh

VOICE_TEXT = (
    "Most people never notice the small things that make a city work. "
    "Bees are one of them. A single hive can visit millions of flowers in a season, "
    "and the gardens on our rooftops are greener because of it. "
    "Next time you see one, give it a little room."
)


def speech(target: str, dest: Path) -> list[common_pb2.Word]:
    """Synthesize the voice-over with vo's TTS service; return its word timings."""
    with TtsClient.connect(target) as tts:
        result = final_result(tts.synthesize(VOICE_TEXT))
    dest.write_bytes(result.audio_content)
    return list(result.words)


def cues_from_words(words: list[common_pb2.Word], per_cue: int = 4) -> list[common_pb2.Cue]:
    cues = []
    for i in range(0, len(words), per_cue):
        group = words[i : i + per_cue]
        cue = common_pb2.Cue(start_offset=group[0].start_offset, end_offset=group[-1].end_offset)
        cue.words.extend(group)
        cues.append(cue)
    return cues


def spec(voice: Path, cues: list[common_pb2.Cue] | None) -> pb.RenderSpec:
    ramp = pb.SpeedRamp(ease_duration=seconds_to_duration(0))
    for t, v in ((0, 1.0), (10, 0.5), (15, 2.0)):
        ramp.points.append(pb.SpeedPoint(source_offset=seconds_to_duration(t), speed=v))
    s = pb.RenderSpec(
        reframe=pb.ReframeSpec(mode=pb.ReframeSpec.MODE_CENTER, aspect="9:16"),
        ramp=ramp,
        audio=pb.AudioMixSpec(
            voice=common_pb2.MediaSource(uri=str(voice)), duck_db=12, normalize=True
        ),
        encoder=pb.EncoderSpec(preset="veryfast", crf=23),
    )
    if cues:
        s.captions.CopyFrom(pb.CaptionSpec(cues=cues, style=pb.CaptionSpec.STYLE_KARAOKE))
    return s


def ffmpeg_cmd(src: Path, voice: Path, dst: Path) -> list[str]:
    graph = (
        "[0:v]crop=606:1080:656:0,scale=1080:1920,split=3[v1][v2][v3];"
        "[v1]trim=0:10,setpts=PTS-STARTPTS[va];"
        "[v2]trim=10:15,setpts=(PTS-STARTPTS)/0.5[vb];"
        "[v3]trim=15:30,setpts=(PTS-STARTPTS)/2[vc];"
        "[va][vb][vc]concat=n=3:v=1:a=0,fps=30[vout];"
        "[0:a]asplit=3[a1][a2][a3];"
        "[a1]atrim=0:10,asetpts=PTS-STARTPTS[xa];"
        "[a2]atrim=10:15,asetpts=PTS-STARTPTS,atempo=0.5[xb];"
        "[a3]atrim=15:30,asetpts=PTS-STARTPTS,atempo=2[xc];"
        "[xa][xb][xc]concat=n=3:v=0:a=1[orig];"
        "[1:a]aresample=48000,aformat=channel_layouts=stereo,asplit=2[vsc][vmix];"
        "[orig][vsc]sidechaincompress=threshold=0.02:ratio=8:attack=50:release=400[ducked];"
        "[ducked][vmix]amix=inputs=2:normalize=0,loudnorm=I=-14:TP=-1,aresample=48000[aout]"
    )
    return [
        ffmpeg_binary(),
        "-y",
        "-loglevel",
        "error",
        "-i",
        str(src),
        "-i",
        str(voice),
        "-filter_complex",
        graph,
        "-map",
        "[vout]",
        "-map",
        "[aout]",
        *ENCODER_ARGS,
        "-movflags",
        "+faststart",
        str(dst),
    ]


def render_once(clip: Path, voice: Path, cues_file: Path, dst: Path) -> None:
    """One full render with captions in this process (the memory probe's child)."""
    cues = [common_pb2.Cue.FromString(bytes.fromhex(c)) for c in json.loads(cues_file.read_text())]
    with EmbeddedMesh() as mesh, VideoClient.connect(mesh.target) as client:
        request = pb.RenderRequest(
            input=common_pb2.MediaSource(uri=str(clip)), output_uri=str(dst), spec=spec(voice, cues)
        )
        for _ in client.render(request):
            pass


def memory(clip: Path, five: Path, voice: Path, cues: list[common_pb2.Cue]) -> None:
    """Peak RSS of a full render on 30 s against 5 min of input, each in a fresh process."""
    cues_file = OUT / "render_cues.json"
    cues_file.write_text(json.dumps([c.SerializeToString().hex() for c in cues]))
    rows = []
    for name, src in (("30 s", clip), ("5 min", five)):
        argv = [sys.executable, __file__, "--child", str(src), str(voice), str(cues_file)]
        seconds, rss = run_child([*argv, str(OUT / "mem_render.mp4")])
        rows.append((name, seconds, rss))
    print("\npeak memory of the full render against input length:")
    print(
        table(
            [["input", "wall s", "peak RSS MB"], *([n, f"{t:.1f}", f"{r:.0f}"] for n, t, r in rows)]
        )
    )
    print(f"5 min - 30 s = {rows[1][2] - rows[0][2]:+.0f} MB  (target: flat, <= +50 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", nargs=4, metavar=("CLIP", "VOICE", "CUES", "OUT"), type=Path)
    args = parser.parse_args()
    if args.child:
        render_once(*args.child)
        return
    clip, five = make_inputs(long=not args.skip_memory)
    voice = OUT / "voice.wav"
    with EmbeddedMesh() as mesh:
        words = speech(mesh.target, voice)
        cues = cues_from_words(words)
        client = VideoClient.connect(mesh.target)

        def vo_render(with_captions: bool) -> tuple[float, float]:
            start = time.perf_counter()
            request = pb.RenderRequest(
                input=common_pb2.MediaSource(uri=str(clip)),
                output_uri=str(OUT / ("vo_full.mp4" if with_captions else "vo_nocaptions.mp4")),
                spec=spec(voice, cues if with_captions else None),
            )
            for _ in client.render(request):
                pass
            return time.perf_counter() - start, 0.0

        contenders = {
            "vo Render (with captions)": lambda: vo_render(True),
            "ffmpeg CLI (no captions)": lambda: run_child(
                ffmpeg_cmd(clip, voice, OUT / "ffmpeg_full.mp4")
            ),
            "vo Render (no captions)": lambda: vo_render(False),
        }
        print(
            f"30 s 1080p: reframe + 3-segment ramp + voice-over ducking + loudness; {args.runs} rounds"
        )
        t = alternate(contenders, {name: args.runs for name in contenders})
        client.close()
    full = t["vo Render (with captions)"].median
    bare = t["vo Render (no captions)"].median
    ffmpeg = t["ffmpeg CLI (no captions)"].median
    print()
    print(table([["contender", "median s"], *([x.name, f"{x.median:.2f}"] for x in t.values())]))
    print()
    print(f"vo full render / ffmpeg CLI  = {full / ffmpeg:.3f}  (target <= 1.3)")
    print(f"captions overhead            = {(full / bare - 1) * 100:+.1f}%  (target <= +10%)")
    if five is not None:
        memory(clip, five, voice, cues)


if __name__ == "__main__":
    main()
