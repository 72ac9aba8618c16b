"""Generate vo's Python stubs from protos/ into the client distribution.

Usage: python protos/generate.py [OUT_DIR]   (default: clients/src)

Writes ``*_pb2.py`` (messages), ``*_pb2.pyi`` and ``*_pb2_grpc.pyi`` (typed stubs from
mypy-protobuf) and ``*_pb2_grpc.py`` (gRPC stubs and servicers) under the proto package path,
so ``vo/video/v1/video_service.proto`` becomes ``vo.video.v1.video_service_pb2``.
The test suite runs this into a temporary folder and fails when the committed code differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = PROTO_ROOT.parent / "clients" / "src"


def proto_files() -> list[Path]:
    """Every .proto of the contract, in a stable order."""
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc with the python, grpc and mypy plugins into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    bin_dir = Path(sys.executable).parent  # mypy-protobuf's plugins sit beside the interpreter
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    # Every proto directory becomes a regular package (STYLE.md: no namespace packages).
    for proto in proto_files():
        package_dir = out_dir / proto.parent.relative_to(PROTO_ROOT)
        while package_dir != out_dir:
            init = package_dir / "__init__.py"
            if not init.exists():
                init.write_text("")
            package_dir = package_dir.parent


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    generate(out)


if __name__ == "__main__":
    main()
