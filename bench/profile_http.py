"""Where a turn's CPU goes: py-spy samples one uvicorn worker while wrk drives POST /api/chat.

    python -m bench.profile_http [--seconds 15] [--connections 16] [--top 40]

The server is the HTTP section's (`bench.chatkeep_asgi:app`, the echo assistant), with one
worker so one process holds all the work. py-spy samples it at 250 Hz with `--idle` off,
so only samples where Python is running count; the summary groups them by the project's
own code and its libraries and prints the heaviest frames, inclusive and self, as shares
of all samples. `--raw FILE` keeps py-spy's collapsed stacks (for a flame graph).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import http_load
from bench.pg import BenchServer


def _frame_name(frame: str) -> str:
    # py-spy collapsed frames look like "function (path/to/module.py:123)".
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/app/", "/bench/", "/tests/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker in ("/app/", "/bench/", "/tests/"):
                path = marker.strip("/") + "/" + path
            break
    return f"{name} ({path})"


def _area(frame: str) -> str:
    path = frame.partition(" (")[2].rsplit(":", 1)[0]
    if "/app/" in path and "site-packages" not in path:
        return "app/" + path.split("/app/", 1)[1].split("/", 1)[0]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    # Newer py-spy names frames by module path ("asyncpg/connection.py").
    head, _, rest = path.partition("/")
    if head == "app" and rest:
        return "app/" + rest.split("/", 1)[0].removesuffix(".py")
    package = head.removesuffix(".py")
    if not package or package.startswith("<") or package in sys.stdlib_module_names:
        return "stdlib/other"
    return package


def summarise(collapsed: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        for name in {_frame_name(f) for f in frames}:
            inclusive[name] += count
        own[_frame_name(frames[-1])] += count
        areas[_area(frames[-1])] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "self time by package / app module:"]
    lines += [f"  {n / total:6.1%}  {a}" for a, n in areas.most_common(15)]
    lines += ["", f"top {top} frames, inclusive (self):"]
    for name, n in inclusive.most_common(top):
        lines.append(f"  {n / total:6.1%} ({own[name] / total:5.1%})  {name}")
    lines += ["", f"top {top} frames by self time:"]
    for name, n in own.most_common(top):
        lines.append(f"  {n / total:6.1%}  {name}")
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None or shutil.which("py-spy") is None:
        raise SystemExit("needs wrk and py-spy on PATH (make bench-deps; pip install py-spy)")
    server = BenchServer.start()
    tmp = Path(tempfile.mkdtemp(prefix="chatkeep-profile-"))
    try:
        url = await server.migrated_database("profile")
        env = {
            "SECRET_KEY": http_load.SECRET_KEY,
            "DATA_DIR": str(tmp / "data"),
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_ENABLED": "false",
            "PYTHONDONTWRITEBYTECODE": "1",
            "DATABASE_URL": url,
        }
        port = http_load._free_port()
        base = f"http://127.0.0.1:{port}"
        tokens_file = tmp / "tokens.txt"
        with http_load.serve(args.app, env, port, workers=1) as proc:
            tokens = await http_load._sign_in(base, args.connections)
            tokens_file.write_text("\n".join(tokens) + "\n")
            await asyncio.to_thread(http_load._wrk, base, 4, 2, tokens_file, 8, proc.pid)
            out = tmp / "stacks.txt"
            spy = await asyncio.to_thread(
                subprocess.Popen,
                ["py-spy", "record", "--pid", str(proc.pid), "--rate", "250",
                 "--duration", str(args.seconds), "--format", "raw", "--output", str(out),
                 "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(0.5)
            raw, _ = await asyncio.to_thread(
                http_load._wrk, base, args.connections, args.seconds, tokens_file, 8, proc.pid
            )
            spy.wait(timeout=args.seconds + 30)
        ok = raw["requests"] - raw["failed"]
        seconds = raw["duration_us"] / 1e6
        print(
            f"{ok / seconds:.0f} turns/s at {args.connections} connections, one worker; "
            f"server CPU {raw['server_cpu_s'] * 1000 / ok:.2f} ms/turn"
        )
        print(summarise(out, args.top))
        if args.raw:
            shutil.copy(out, args.raw)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        await server.drop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--app", default="bench.chatkeep_asgi:app")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
