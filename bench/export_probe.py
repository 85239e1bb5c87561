"""One export in a process of its own: prints its time, size and peak memory as JSON.

python -m bench.export_probe pdf --url URL --user UUID --session ID
python -m bench.export_probe zip --url URL --user UUID
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import sqlalchemy as sa

from app.core.db import create_engine, create_sessionmaker
from bench.stores import bench_settings


def _mib(value: float) -> float:
    return value / 2**20


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from app.exports.downloads import conversation_pdf
    from app.exports.zip_export import archive
    from app.history.service import SessionFilter
    from app.typesetting import pdf as _pdf  # noqa: F401  (library import counts as "before")

    settings = bench_settings(args.url)
    engine = create_engine(settings, args.url)
    sm = create_sessionmaker(engine)
    user_id = uuid.UUID(args.user)
    try:
        async with sm() as s:
            await s.execute(sa.text("SELECT 1"))
        base = psutil.Process().memory_info().rss
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as data_dir:
            if args.kind == "pdf":
                download = await conversation_pdf(
                    sessionmaker=sm,
                    user_id=user_id,
                    session_id=args.session,
                    data_dir=Path(data_dir),
                )
            else:
                download = await archive(
                    sessionmaker=sm,
                    user_id=user_id,
                    flt=SessionFilter(),
                    now=datetime.now(UTC),
                    data_dir=Path(data_dir),
                )
            try:
                # Read and dropped chunk by chunk, as a client downloading it would.
                size = sum(len(chunk) for chunk in download.chunks())
            finally:
                download.close()
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "kind": args.kind,
        "seconds": seconds,
        "bytes": size,
        "base_rss_mib": _mib(base),
        "peak_rss_mib": peak_kib / 1024,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.export_probe")
    parser.add_argument("kind", choices=["pdf", "zip"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--session")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
