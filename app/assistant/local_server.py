"""The local model's own process: llama.cpp's OpenAI-compatible server, through xllamacpp.

Started by `local_model.LocalModelProcess` as `python -m app.assistant.local_server`, never
by hand. What it serves comes from the environment the parent sets:

    CHATKEEP_LOCAL_MODEL_PATH        the GGUF file
    CHATKEEP_LOCAL_MODEL_KEY         the API key every request must carry (generated per start)
    CHATKEEP_LOCAL_MODEL_THREADS     CPU threads for generation and prompt processing
    CHATKEEP_LOCAL_MODEL_PARALLEL    replies generated at once (llama.cpp's slots)
    CHATKEEP_LOCAL_MODEL_CONTEXT     context tokens per slot

It listens on 127.0.0.1 on a free port, prints one JSON line `{"address": "http://..."}` to
stdout once the model is loaded, and then reads stdin until it closes: the parent holds the
other end of that pipe, so when the parent goes, however it goes (SIGKILL included), the
read ends and this process exits. On Linux the kernel also sends SIGTERM when the parent
dies (PR_SET_PDEATHSIG), in case the pipe leaked to another process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - the stdin pipe still works
        pass


def _params() -> Any:
    import xllamacpp

    threads = int(os.environ.get("CHATKEEP_LOCAL_MODEL_THREADS", "1"))
    parallel = int(os.environ.get("CHATKEEP_LOCAL_MODEL_PARALLEL", "1"))
    context = int(os.environ.get("CHATKEEP_LOCAL_MODEL_CONTEXT", "2048"))
    params = xllamacpp.CommonParams()
    params.model.path = os.environ["CHATKEEP_LOCAL_MODEL_PATH"]
    params.model_alias = "local"
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port, chosen by the system
    params.api_keys = [os.environ["CHATKEEP_LOCAL_MODEL_KEY"]]
    params.ui = False
    params.n_parallel = parallel
    params.n_ctx = context * parallel  # llama.cpp splits the context among its slots
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    return params


def main() -> None:
    _die_with_parent()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    import xllamacpp

    server = xllamacpp.Server(_params())
    sys.stdout.write(json.dumps({"address": server.listening_address}) + "\n")
    sys.stdout.flush()
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        # The server's threads hold no state worth saving: leave at once.
        os._exit(0)


if __name__ == "__main__":
    main()
