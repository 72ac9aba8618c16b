"""The contract: buf lint and format clean, generated code fresh."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"


def _buf(*args: str) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), "buf is missing: run `make install` (npm installs @bufbuild/buf)"
    return subprocess.run([str(BUF), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_buf_lint_is_clean() -> None:
    result = _buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_format_is_clean() -> None:
    result = _buf("format", "--diff", "--exit-code")
    assert result.returncode == 0, result.stdout + result.stderr


def stubs(root: Path) -> list[Path]:
    """The generated sources under ``root`` (bytecode caches are not generated code)."""
    return [p for p in root.rglob("*_pb2*") if p.is_file() and p.suffix in (".py", ".pyi")]


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), str(tmp_path)],
        check=True,
        timeout=120,
    )
    committed = ROOT / "clients" / "src" / "vo"
    fresh = tmp_path / "vo"
    generated = sorted(p.relative_to(tmp_path) for p in stubs(fresh))
    assert generated, "generation produced nothing"
    stale = [
        str(rel)
        for rel in generated
        if not filecmp.cmp(tmp_path / rel, committed.parent / rel, shallow=False)
    ]
    assert stale == [], f"regenerate with `make generate`: {stale}"
    # No generated file may be missing from the generation (a proto deleted but stubs kept).
    committed_generated = sorted(p.relative_to(committed.parent) for p in stubs(committed))
    assert committed_generated == generated
    shutil.rmtree(tmp_path / "vo")


def test_every_service_in_contract() -> None:
    from vo.pipeline.v1 import pipeline_service_pb2
    from vo.script.v1 import script_service_pb2
    from vo.subtitle.v1 import subtitle_service_pb2
    from vo.tts.v1 import tts_service_pb2
    from vo.video.v1 import video_service_pb2

    assert {
        m.DESCRIPTOR.services_by_name[n].full_name
        for m, n in [
            (video_service_pb2, "VideoService"),
            (tts_service_pb2, "TtsService"),
            (subtitle_service_pb2, "SubtitleService"),
            (script_service_pb2, "ScriptService"),
            (pipeline_service_pb2, "PipelineService"),
        ]
    } == {
        "vo.video.v1.VideoService",
        "vo.tts.v1.TtsService",
        "vo.subtitle.v1.SubtitleService",
        "vo.script.v1.ScriptService",
        "vo.pipeline.v1.PipelineService",
    }
