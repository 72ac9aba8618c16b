"""Pipeline settings: environment variables, the optional file, and what is rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
from vo_core.errors import InvalidInput
from vo_pipeline.config import Settings


def test_the_file_fills_in_and_the_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.env"
    config.write_text(
        "# worker pool\n"
        "VO_PIPELINE_MAX_WORKERS=6\n"
        "VO_PIPELINE_MIN_WORKERS = 2\n"
        "\n"
        "VO_PIPELINE_MAX_QUEUE_SIZE=50\n"
        "VO_PIPELINE_VIDEO_TARGET=video:4545\n"
    )
    env = {"VO_PIPELINE_CONFIG": str(config), "VO_PIPELINE_MAX_QUEUE_SIZE": "7"}
    s = Settings.from_env(env)
    assert (s.min_workers, s.max_workers, s.max_queue_size) == (2, 6, 7)
    assert s.service_targets == {"video": "video:4545"}


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"VO_PIPELINE_MIN_WORKERS": "5", "VO_PIPELINE_MAX_WORKERS": "2"}, "need 0 <= min <= max"),
        ({"VO_PIPELINE_MAX_QUEUE_SIZE": "0"}, "MAX_QUEUE_SIZE=0 must be >= 1"),
        ({"VO_PIPELINE_WORKER_MODE": "fork"}, "use process or thread"),
        ({"VO_PIPELINE_MAX_WORKERS": "many"}, "VO_PIPELINE_MAX_WORKERS"),
        ({"VO_PIPELINE_CONFIG": "/nonexistent/vo.env"}, "/nonexistent/vo.env"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle.replace("(", r"\(")):
        Settings.from_env(env)


def test_a_malformed_file_line_is_named(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.env"
    config.write_text("VO_PIPELINE_MAX_WORKERS=2\nmax workers four\n")
    with pytest.raises(InvalidInput, match="line 2: expected NAME=value"):
        Settings.from_env({"VO_PIPELINE_CONFIG": str(config)})
