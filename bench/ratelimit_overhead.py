"""What a rate-limit check adds to a request: hit() on every window plus the header values.

    .venv/bin/python bench/ratelimit_overhead.py [--calls 20000] [--redis redis://127.0.0.1:6379/0]

Runs the project's own Limiter, sequentially (latency, not throughput), for the chat
policy (two windows, 20/minute;500/day) and the default policy (one window, 120/minute),
against memory:// and Redis, beside a baseline with no limiter. Requests rotate over many
users so every one is admitted, as in normal traffic. Redis keys get a unique prefix and
are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

# Run as a plain script: the project root first, whatever package install the venv holds.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ratelimit.dependencies import header_values
from app.ratelimit.policies import Policy, parse_policy
from app.ratelimit.storage import Limiter

POLICIES = {"chat": "20/minute;500/day", "default": "120/minute"}


async def _baseline(calls: int) -> list[int]:
    async def nothing() -> dict[str, str]:
        return {}

    out = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        await nothing()
        out.append(time.perf_counter_ns() - t0)
    return out


async def _measure(limiter: Limiter, policy: Policy, calls: int, users: int) -> list[int]:
    ids = [str(uuid.uuid4()) for _ in range(users)]
    out = []
    for i in range(calls):
        t0 = time.perf_counter_ns()
        decision = await limiter.hit(policy, "user", ids[i % users])
        header_values(decision.states, time.time())
        out.append(time.perf_counter_ns() - t0)
        assert decision.allowed and decision.states, "a request was refused or storage failed"
    return out


def _row(name: str, samples: list[int], base: float) -> str:
    ordered = sorted(samples)
    median = statistics.median(ordered) / 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] / 1000
    return f"| {name:<28} | {median:>10.1f} | {p99:>10.1f} | {median - base:>13.1f} |"


async def _cleanup(url: str, prefix: str) -> None:
    import coredis

    client = coredis.Redis.from_url(url)
    keys = [k async for k in client.scan_iter(match=f"*{prefix}*")]
    if keys:
        await client.delete(keys)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    # Each user gets at most the smallest limit of requests: all admitted.
    users = -(-args.calls // 20)
    await _baseline(2000)  # warm-up
    base = await _baseline(args.calls)
    base_median = statistics.median(base) / 1000
    rows = [_row("no limiter", base, base_median)]
    stores = [("memory", "memory://"), ("redis", args.redis)]
    try:
        for store, url in stores:
            limiter = Limiter(url, timeout_seconds=2.0)
            for name, text in POLICIES.items():
                policy = parse_policy(name, text, namespace=prefix)
                await _measure(limiter, policy, 500, 25)  # warm-up: connections, scripts
                samples = await _measure(limiter, policy, args.calls, users)
                windows = len(policy.windows)
                label = f"{store}, {name} ({windows} window{'s' * (windows > 1)})"
                rows.append(_row(label, samples, base_median))
    finally:
        await _cleanup(args.redis, prefix)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.calls} sequential calls each; microseconds per call; load average {load}\n")
    print(f"| {'limiter':<28} | {'median µs':>10} | {'p99 µs':>10} | {'added (med)':>13} |")
    print(f"|{'-' * 30}|{'-' * 12}|{'-' * 12}|{'-' * 15}|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    asyncio.run(main())
