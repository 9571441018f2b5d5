"""Campaigns on Dask: many requests, each formula expansion a unit of work on a worker.

Why Dask (``dask.distributed``) rather than a scheduler of our own: it runs a ``LocalCluster`` on a
laptop and connects to the scheduler a group already has (Slurm or PBS through dask-jobqueue,
Kubernetes, cloud) with one address. The unit of work is one formula expansion (generate L
structures per generator, screen, relax the best K, place on the hull): seconds to a minute, large
enough that scheduling costs little, small enough that a lost worker costs one unit.

- Models load once per worker process (:class:`GenMSWorkerPlugin`), with torch and BLAS on one
  thread each.
- Each unit's result is written by the worker, atomically, as ``units/<request>/<formula node>.json``
  under the campaign folder: a stopped campaign (or a dead client) resumes with nothing that
  finished recomputed, and a unit Dask reruns after a worker dies writes the same file once.
- Expansions are seeded per formula and independent, so a campaign of one request gives the same
  candidates as ``genms generate`` with the same options and seed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

from genms_pmg.data.cache import write_atomic
from genms_pmg.errors import UsageError

__all__ = ["Campaign", "DaskExpander", "GenMSWorkerPlugin", "read_requests"]

#: Options of LanguageStructureGenerator that a worker needs to build the same search.
SEARCH_OPTIONS = ("seed", "proposer", "generators", "energy_model", "formulas", "structures", "width", "relax",
                  "relax_top", "relax_steps", "max_e_hull", "hull")
_SEARCHES: dict[str, Any] = {}
_LOCK = threading.Lock()


def options_key(options: dict) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _one_thread() -> None:
    """torch and BLAS on one thread per worker process: competing threads on few cores slow all."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover
        pass


def worker_search(options: dict):
    """The HierarchicalSearch for ``options`` in this process, built once."""
    key = options_key(options)
    with _LOCK:
        if key not in _SEARCHES:
            from genms_pmg.generator import LanguageStructureGenerator

            _one_thread()
            gen = LanguageStructureGenerator(progress=False, **options)
            _SEARCHES[key] = gen._build_search()
        return _SEARCHES[key]


try:  # the plugin base class exists only where distributed is installed
    from distributed import WorkerPlugin as _WorkerPluginBase
except ImportError:  # pragma: no cover - campaign needs distributed; the rest of GenMS does not
    _WorkerPluginBase = object


class GenMSWorkerPlugin(_WorkerPluginBase):
    """Loads the search's models once when a worker starts (and again after a restart)."""

    def __init__(self, options: dict) -> None:
        self.options = options
        self.name = f"genms-{options_key(options)}"

    def setup(self, worker) -> None:  # noqa: D401 - Dask's hook
        worker_search(self.options)


def expand_unit_task(options: dict, request_dict: dict, node_dict: dict, seed: int, forget: list[str],
                     record_path: str | None) -> dict:
    """Run one unit on a worker, write its record atomically, return it."""
    from genms_pmg.data.forget import forgetting
    from genms_pmg.request import Request
    from genms_pmg.search import SearchNode

    t0 = time.perf_counter()
    search = worker_search(options)
    search.timings = {}
    request = Request.from_dict(request_dict)
    with forgetting(forget):
        data, children, structures = search.expand_unit(request, SearchNode(**node_dict), seed)
    record = {"unit": node_dict["node_id"], "formula": node_dict["label"], "data": data,
              "nodes": [asdict(n) for n in children],
              "structures": {k: s.as_dict() for k, s in structures.items()},
              "timings": dict(search.timings), "seconds": time.perf_counter() - t0, "finished": time.time()}
    if record_path is not None:
        write_atomic(Path(record_path), json.dumps(record, default=str).encode())
    return record


class DaskExpander:
    """``expand_many`` for :meth:`HierarchicalSearch.run` on a Dask client, with unit records.

    Args:
        client: a ``distributed.Client``.
        options: the LanguageStructureGenerator options the workers build their search from.
        units_dir: folder for the unit records of one request (None: keep nothing on disk).
        forget: formulas the workers forget (``data.forget``).
        progress: a tqdm bar over units, shared by every request of a campaign (or None).
    """

    def __init__(self, client, options: dict, *, units_dir: Path | None = None, forget: Sequence[str] = (),
                 progress=None) -> None:
        self.client = client
        self.options = options
        self.units_dir = Path(units_dir) if units_dir else None
        self.forget = list(forget)
        self.progress = progress
        self.computed = 0
        self.reused = 0
        self.unit_seconds: list[float] = []
        self.timings: dict[str, float] = {}
        self.first_submit: float | None = None  # perf_counter span of the units this expander ran
        self.last_done: float | None = None

    def _record_path(self, node) -> Path | None:
        return self.units_dir / f"{node.node_id}.json" if self.units_dir else None

    def __call__(self, request, tree, nodes, seed: int) -> None:
        from distributed import as_completed

        pending = {}
        for node in nodes:
            path = self._record_path(node)
            record = _read_record(path, node) if path else None
            if record is not None:
                self._merge(tree, node, record)
                self.reused += 1
                if self.progress is not None:
                    self.progress.update(1)
                continue
            future = self.client.submit(
                expand_unit_task, self.options, request.as_dict(), asdict(node), seed, self.forget,
                str(path) if path else None, key=f"genms-unit-{options_key(self.options)}-{request_key(request)}-{node.node_id}",
                pure=False, retries=2)
            pending[future] = node
            if self.first_submit is None:
                self.first_submit = time.perf_counter()
        for future in as_completed(list(pending)):
            node = pending[future]
            record = future.result()
            self._merge(tree, node, record)
            self.computed += 1
            self.last_done = time.perf_counter()
            self.unit_seconds.append(record["seconds"])
            for stage, seconds in record.get("timings", {}).items():
                self.timings[stage] = self.timings.get(stage, 0.0) + seconds
            if self.progress is not None:
                self.progress.update(1)

    @staticmethod
    def _merge(tree, node, record: dict) -> None:
        from pymatgen.core import Structure

        from genms_pmg.search import SearchNode

        node.data.update(record["data"])
        node.data["expanded"] = True
        for nd in record["nodes"]:
            structure = record["structures"].get(nd["node_id"])
            tree.add(SearchNode(**nd), Structure.from_dict(structure) if structure else None)


def _read_record(path: Path, node) -> dict | None:
    """A finished unit's record, if it belongs to this node (same formula); None otherwise."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("formula") != node.label or "nodes" not in record:
        return None
    return record


def request_key(request) -> str:
    return hashlib.sha256(json.dumps(request.as_dict(), sort_keys=True, default=str).encode()).hexdigest()[:12]


def read_requests(path: str | Path) -> list[dict]:
    """Requests from a text file (one per line, ``#`` comments) or a JSON / YAML list whose items
    are strings or objects with ``request`` and optional ``n`` and ``seed``.

    Raises:
        UsageError: the file cannot be read, is empty, or an item has no request.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read requests file {str(path)!r} ({exc.__class__.__name__}); give a text file with "
                         "one request per line, or a JSON/YAML list") from None
    items: list
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        try:
            if path.suffix.lower() == ".json":
                items = json.loads(text)
            else:
                import yaml

                items = yaml.safe_load(text)
        except Exception as exc:  # noqa: BLE001 - any parse error of the user's file
            raise UsageError(f"{path} is not valid {path.suffix[1:].upper()} ({exc.__class__.__name__}); write a list "
                             "of requests, e.g. [\"a spinel oxide\", {\"request\": \"a perovskite\", \"n\": 5}]") from None
        if not isinstance(items, list):
            raise UsageError(f"{path} must hold a list of requests")
    else:
        items = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        items = [line for line in items if line]
    out = []
    for i, item in enumerate(items, 1):
        entry = {"request": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else {}
        if not str(entry.get("request", "")).strip():
            raise UsageError(f"{path}: item {i} has no request; give a sentence such as 'a stable spinel oxide'")
        unknown = set(entry) - {"request", "n", "seed"}
        if unknown:
            raise UsageError(f"{path}: item {i} has unknown option(s) {', '.join(sorted(unknown))}; use request, n, seed")
        out.append(entry)
    if not out:
        raise UsageError(f"{path} holds no request; write one request per line")
    return out


class Campaign:
    """Many requests through the search on a Dask cluster; results and unit records under ``out``.

    Args:
        requests: request dicts as :func:`read_requests` returns them.
        out: campaign folder.
        client: a ``distributed.Client``; None starts a ``LocalCluster`` with ``workers`` processes.
        workers: worker processes of the LocalCluster (one thread each).
        scheduler: address of an existing scheduler (``tcp://host:8786``) instead of a LocalCluster.
        n: structures per request (a request's own ``n`` wins).
        forget: formulas forgotten by every unit (``data.forget``).
        **options: LanguageStructureGenerator options (seed, formulas, structures, width, ...).
    """

    def __init__(self, requests: Sequence[dict], *, out: str | Path, client=None, workers: int = 2,
                 scheduler: str | None = None, n: int = 3, forget: Sequence[str] = (), progress: bool = True,
                 **options: Any) -> None:
        unknown = set(options) - set(SEARCH_OPTIONS)
        if unknown:
            raise UsageError(f"unknown campaign option(s) {', '.join(sorted(unknown))}; use {', '.join(SEARCH_OPTIONS)}")
        self.requests = list(requests)
        self.out = Path(out)
        self.client = client
        self.workers = workers
        self.scheduler = scheduler
        self.n = n
        self.forget = list(forget)
        self.progress = progress
        self.options = dict(options)
        self._cluster = None

    # -- cluster -----------------------------------------------------------------------------
    def _connect(self):
        if self.client is not None:
            return self.client
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="20s")
            except OSError as exc:
                raise UsageError(f"cannot reach the Dask scheduler at {self.scheduler} ({exc}); check the address "
                                 "or use --workers N for a local cluster") from None
        else:
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         dashboard_address=":0", env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
            self.client = Client(self._cluster)
        return self.client

    def close(self) -> None:
        if self._cluster is not None:
            self.client.close()
            self._cluster.close()
            self._cluster = None

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run every request; write ``<out>/<i>-<slug>/results.json`` and the summary; return the summary."""
        from tqdm.auto import tqdm

        from genms_pmg.generator import LanguageStructureGenerator

        client = self._connect()
        print(f"genms: Dask dashboard: {client.dashboard_link}", flush=True)
        options = {k: v for k, v in self.options.items() if v is not None}
        for key in SEARCH_OPTIONS:  # what a worker needs, with the generator's own defaults filled in
            options.setdefault(key, getattr(LanguageStructureGenerator(progress=False), key))
        client.register_plugin(GenMSWorkerPlugin(options))
        self.out.mkdir(parents=True, exist_ok=True)
        width = options["width"]
        bar = tqdm(total=width * len(self.requests), desc="campaign units", unit="unit", disable=not self.progress)
        t0 = time.perf_counter()
        expanders: list[DaskExpander] = []

        def one(i: int, entry: dict) -> dict:
            from genms_pmg.parsing import parse_request

            folder = self.out / f"{i:03d}-{_slug(entry['request'])}"
            seed = int(entry.get("seed", options["seed"]))
            try:
                request = parse_request(entry["request"])
            except UsageError as err:
                return {"index": i, "request": entry["request"], "error": str(err)}
            expander = DaskExpander(client, {**options, "seed": seed}, units_dir=folder / "units" / request_key(request),
                                    forget=self.forget, progress=bar)
            expanders.append(expander)
            gen = LanguageStructureGenerator(progress=False, forget=self.forget, expander=expander,
                                             **{**options, "seed": seed})
            try:
                result = gen.search(request, int(entry.get("n", self.n)))
            except UsageError as err:
                return {"index": i, "request": entry["request"], "error": str(err)}
            payload = {"request": result.request.as_dict(), "config": result.config, "seed": seed,
                       "candidates": [c.as_dict() for c in result.candidates], "evaluated": result.evaluated(),
                       "timings_s": result.timings}
            write_atomic(folder / "results.json", json.dumps(payload, default=str).encode())
            return {"index": i, "request": entry["request"], "folder": folder.name,
                    "candidates": [{"formula": c.formula, "e_above_hull": c.scores.get("e_above_hull"),
                                    "family": result.request.family} for c in result.candidates]}

        pool = ThreadPoolExecutor(max_workers=max(1, min(len(self.requests), 8)))
        futures = [pool.submit(one, i, entry) for i, entry in enumerate(self.requests, 1)]
        try:
            while not all(f.done() for f in futures):
                wait(futures, timeout=0.5)  # short waits: Ctrl-C reaches the main thread at once
            rows = [f.result() for f in futures]
        except BaseException:
            # stopped (Ctrl-C) or failed: finished units are on disk; closing the client (the caller's
            # close()) releases the request threads still waiting on Dask
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
        pool.shutdown(wait=True)
        wall = time.perf_counter() - t0
        unit_seconds = [s for e in expanders for s in e.unit_seconds]
        stages: dict[str, float] = {}
        for e in expanders:
            for k, v in e.timings.items():
                stages[k] = stages.get(k, 0.0) + v
        starts = [e.first_submit for e in expanders if e.first_submit is not None]
        ends = [e.last_done for e in expanders if e.last_done is not None]
        summary = {"requests": rows, "wall_seconds": wall,
                   "unit_phase_seconds": (max(ends) - min(starts)) if starts and ends else 0.0, "units_computed": sum(e.computed for e in expanders),
                   "units_reused": sum(e.reused for e in expanders), "unit_seconds": unit_seconds,
                   "stage_seconds": stages, "workers": len(client.scheduler_info().get("workers", {})),
                   "options": options}
        write_atomic(self.out / "campaign.json", json.dumps(summary, default=str).encode())
        _report(summary, self.out)
        return summary


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "request"


def _report(summary: dict, out: Path) -> None:
    """campaign.md (table per request) and campaign.png (candidates per family, E_hull, time per stage)."""
    lines = ["# Campaign", "", f"{len(summary['requests'])} requests, {summary['units_computed']} units computed, "
             f"{summary['units_reused']} reused, {summary['workers']} workers, {summary['wall_seconds']:.1f} s wall", "",
             "| # | request | candidates (E_hull eV/atom) |", "|---|---|---|"]
    for row in summary["requests"]:
        if "error" in row:
            cell = f"error: {row['error']}"
        else:
            cell = ", ".join(f"{c['formula']} ({c['e_above_hull']:+.3f})" if c["e_above_hull"] is not None
                             else c["formula"] for c in row["candidates"])
        lines.append(f"| {row['index']} | {row['request']} | {cell} |")
    write_atomic(out / "campaign.md", ("\n".join(lines) + "\n").encode())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genms_pmg.outputs import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    families: dict[str, int] = {}
    hulls = []
    for row in summary["requests"]:
        for c in row.get("candidates", []):
            families[c.get("family") or "none"] = families.get(c.get("family") or "none", 0) + 1
            if c["e_above_hull"] is not None:
                hulls.append(c["e_above_hull"])
    axes[0].bar(list(families), list(families.values()))
    axes[0].set_title("candidates per family")
    axes[0].tick_params(axis="x", rotation=45)
    axes[1].hist(hulls, bins=20)
    axes[1].set_title("energy above hull (eV/atom)")
    stages = summary["stage_seconds"]
    axes[2].barh(list(stages), list(stages.values()))
    axes[2].set_title("worker time per stage (s)")
    fig.tight_layout()
    save_figure(fig, out / "campaign.png")
