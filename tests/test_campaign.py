"""`genms campaign` on a real Dask LocalCluster: same answer as generate, resume, a killed worker."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import distributed
import pytest

from genms_pmg.campaign import Campaign, read_requests
from genms_pmg.errors import UsageError
from genms_pmg.generator import LanguageStructureGenerator

OPTIONS = dict(seed=0, formulas=4, structures=2, width=3, generators=["templates"])


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       env={"OMP_NUM_THREADS": "1"})
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _answers(summary: dict) -> list[list[tuple[str, float]]]:
    return [[(c["formula"], round(c["e_above_hull"], 4)) for c in row["candidates"]] for row in summary["requests"]]


def test_one_request_campaign_gives_the_same_candidates_as_generate(client, tmp_path):
    request = "a rocksalt oxide"
    local = LanguageStructureGenerator(progress=False, **OPTIONS).generate(request, n=2)
    summary = Campaign([{"request": request}], out=tmp_path, client=client, n=2, progress=False, **OPTIONS).run()
    assert _answers(summary) == [[(c.formula, round(c.scores["e_above_hull"], 4)) for c in local]]
    assert summary["units_computed"] >= 1 and summary["units_reused"] == 0
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((folder / "results.json").read_text())["candidates"]
    assert (tmp_path / "campaign.md").exists() and (tmp_path / "campaign.png").stat().st_size > 5_000


def test_resume_recomputes_nothing_that_finished(client, tmp_path):
    requests = [{"request": "a rocksalt oxide"}, {"request": "a perovskite fluoride", "n": 1}]
    first = Campaign(requests, out=tmp_path, client=client, n=2, progress=False, **OPTIONS).run()
    again = Campaign(requests, out=tmp_path, client=client, n=2, progress=False, **OPTIONS).run()
    assert first["units_computed"] >= 4
    assert again["units_computed"] == 0 and again["units_reused"] == first["units_computed"]
    assert _answers(again) == _answers(first)


def test_a_killed_worker_costs_only_its_unit(client, tmp_path):
    """A worker process killed mid-campaign: Dask reruns its unit elsewhere; every result is there once."""
    requests = [{"request": "a rocksalt oxide"}, {"request": "a perovskite fluoride"}, {"request": "a spinel oxide"}]
    pids = client.run(os.getpid)
    killed = []

    def kill_one_when_units_start():
        deadline = time.time() + 600
        while time.time() < deadline and not list(tmp_path.glob("*/units/*/*.json")):
            time.sleep(0.05)
        victim = next(iter(pids.values()))
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    killer = threading.Thread(target=kill_one_when_units_start, daemon=True)
    killer.start()
    summary = Campaign(requests, out=tmp_path, client=client, n=1, progress=False, **OPTIONS).run()
    killer.join(timeout=60)
    assert killed, "no worker was killed"
    assert all("candidates" in row and row["candidates"] for row in summary["requests"])
    for row in summary["requests"]:
        doc = json.loads((tmp_path / row["folder"] / "results.json").read_text())
        expanded = [n for n in doc["evaluated"] if n["kind"] == "formula" and n["data"].get("expanded")]
        units = list((tmp_path / row["folder"] / "units").glob("*/*.json"))
        assert sorted(u.stem for u in units) == sorted(n["node_id"] for n in expanded)  # each unit exactly once
        ids = [n["node_id"] for n in doc["evaluated"]]
        assert len(ids) == len(set(ids))  # no duplicate records in the tree
    assert client.run(os.getpid) and killed[0] not in client.run(os.getpid).values()  # the nanny restarted it


def test_requests_files(tmp_path):
    text = tmp_path / "r.txt"
    text.write_text("# campaign\na spinel oxide\n\na perovskite  # comment\n")
    assert read_requests(text) == [{"request": "a spinel oxide"}, {"request": "a perovskite"}]
    listed = tmp_path / "r.json"
    listed.write_text(json.dumps(["a spinel oxide", {"request": "a perovskite", "n": 5, "seed": 2}]))
    assert read_requests(listed)[1] == {"request": "a perovskite", "n": 5, "seed": 2}
    yml = tmp_path / "r.yaml"
    yml.write_text("- a spinel oxide\n- request: a garnet\n  n: 2\n")
    assert read_requests(yml) == [{"request": "a spinel oxide"}, {"request": "a garnet", "n": 2}]
    for content, name, why in (("", "e.txt", "no request"), ("{not json", "b.json", "not valid"),
                               ('[{"request": "x", "width": 3}]', "u.json", "unknown option")):
        bad = tmp_path / name
        bad.write_text(content)
        with pytest.raises(UsageError, match=why):
            read_requests(bad)


def test_cli_refuses_a_used_folder_without_resume(tmp_path, capsys):
    from genms_pmg.cli import main

    requests = tmp_path / "r.txt"
    requests.write_text("a rocksalt oxide\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "campaign.json").write_text("{}")
    assert main(["campaign", str(requests), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["campaign", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o2")]) == 2
    assert not (tmp_path / "o2").exists()


def test_an_interrupted_campaign_resumes_without_recomputing_finished_units(tmp_path):
    """Ctrl-C to `genms campaign` once some units are written; --resume reuses every one of them."""
    import subprocess
    import sys

    requests = tmp_path / "requests.txt"
    requests.write_text("a rocksalt oxide\na perovskite fluoride\na spinel oxide\n")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "genms_pmg.cli", "campaign", str(requests), "--out", str(out), "--workers", "1",
            "-n", "1", "--formulas", "4", "--structures", "2", "--width", "3", "--generator", "templates", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and len(list(out.glob("*/units/*/*.json"))) < 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the campaign finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "--resume" in err
    finished = {p.name for p in out.glob("*/units/*/*.json")}
    assert finished
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((out / "campaign.json").read_text())
    assert summary["units_reused"] >= len(finished)
    assert summary["units_computed"] + summary["units_reused"] == len(list(out.glob("*/units/*/*.json")))
