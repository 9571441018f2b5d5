"""The SevenNet energy-model plugin (plugins/genms-sevennet) and the MP2020 correction helper.

Real SevenNet (7net-l3i5 weights from the sevenn wheel), no fakes. The physical checks use facts
that do not come from the code under test: Materials Project's raw GGA energies of the elements
(matbench-discovery's MP elemental reference entries in ../shared/data), the MP2020 correction
values read straight from pymatgen's YAML, experimental formation enthalpies (NIST-JANAF), the
bulk modulus of silicon, and finite differences of the model's own energy for forces and stress.

Needs ``pip install -c constraints.txt ./plugins/genms-sevennet``; skipped without it.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("genms_sevennet", reason="plugin not installed: pip install ./plugins/genms-sevennet")
pytest.importorskip("sevenn")

from genms_pmg import plugins  # noqa: E402
from genms_pmg.energy.corrections import mp2020_corrected_energy_per_atom, mp_run_parameters  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MP_ELEMENT_ENTRIES = SHARED_DATA / "references" / "mp_elemental_reference_entries_2023-02-07.json.gz"
VAL_CSV = SHARED_DATA / "oqmd_icsd" / "val.csv.gz"
EV_PER_A3_IN_GPA = 160.21766208
KJ_PER_MOL_PER_EV = 96.485332

#: Experimental standard formation enthalpies (NIST-JANAF / CRC), kJ/mol per formula unit.
EXPERIMENTAL_DHF = {"NiO": (-239.7, 2), "NaCl": (-411.2, 2)}


def si_diamond(a: float = 5.469) -> Structure:
    """Conventional diamond Si (MP mp-149's GGA lattice constant is 5.469 Å)."""
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), ["Si"], [[0, 0, 0]])


def rocksalt(a: float, cation: str, anion: str) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def corundum_fe2o3() -> Structure:
    return Structure.from_spacegroup("R-3c", Lattice.hexagonal(5.035, 13.75), ["Fe", "O"],
                                     [[0, 0, 0.3553], [0.3059, 0, 0.25]])


@pytest.fixture(scope="module")
def model():
    return plugins.create("energy_models", "sevennet")


@pytest.fixture(scope="module")
def mp_element_energies() -> dict[str, float]:
    if not MP_ELEMENT_ENTRIES.exists():
        pytest.skip(f"development data not found at {MP_ELEMENT_ENTRIES}")
    with gzip.open(MP_ELEMENT_ENTRIES, "rt") as fh:
        entries = json.load(fh)
    return {el: e["energy"] / sum(e["composition"].values()) for el, e in entries.items()}


def mp2020_yaml() -> dict:
    import yaml

    import pymatgen.entries.compatibility as compat_module

    path = Path(sys.modules[compat_module.MaterialsProject2020Compatibility.__module__].__file__).parent
    return yaml.safe_load((path / "MP2020Compatibility.yaml").read_text())["Corrections"]


# -- discovery, options, isolation ------------------------------------------------------------


def test_entry_point_is_discovered_and_created():
    from genms_sevennet import SevenNetEnergyModel

    infos = {i.name: i for i in plugins.discover("energy_models")}
    assert infos["sevennet"].value == "genms_sevennet:SevenNetEnergyModel"
    assert infos["sevennet"].distribution.lower().replace("_", "-") == "genms-sevennet"
    assert infos["sevennet"].state != "duplicate"
    m = plugins.create("energy_models", "sevennet", model="7net-l3i5", device="cpu")
    assert isinstance(m, SevenNetEnergyModel) and m.name == "sevennet"
    assert m.energy_corrections == "uncorrected" and m.has_forces
    with pytest.raises(plugins.PluginError, match="rejected its options"):
        plugins.create("energy_models", "sevennet", weights="x")


def test_unknown_or_download_only_model_is_refused_without_downloading():
    from genms_pmg.errors import UsageError
    from genms_sevennet import SevenNetEnergyModel

    for name in ("7net-omat", "no-such-model"):  # 7net-omat is a sevenn name that would download
        with pytest.raises(UsageError, match="shipped in the sevenn wheel"):
            SevenNetEnergyModel(model=name).predict_energy_per_atom([si_diamond()])


def test_genms_core_never_imports_sevenn():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "genms_pmg").rglob("*.py")
                 if "import sevenn" in p.read_text() or "from sevenn" in p.read_text()]
    assert offenders == []


def test_loads_and_predicts_with_sockets_refused():
    """A fresh process with every socket connection refused: import, load, predict, no attempts."""
    code = textwrap.dedent("""
        import json, socket, sys
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(repr(args)[:80])
            raise OSError("network disabled by test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        import genms_sevennet
        light = "sevenn" not in sys.modules and "torch" not in sys.modules
        from genms_pmg.plugins import create
        from pymatgen.core import Lattice, Structure
        m = create("energy_models", "sevennet")
        si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.469), ["Si"], [[0, 0, 0]])
        e = float(m.predict_energy_per_atom([si])[0])
        print(json.dumps({"e": e, "attempts": attempts, "light_import": light}))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["attempts"] == []
    assert out["light_import"], "importing genms_sevennet must not import torch or sevenn"
    assert abs(out["e"] - (-5.4253)) < 0.03


# -- physics ----------------------------------------------------------------------------------


def test_si_diamond_energy_matches_mp_raw_gga_and_forces_vanish(model, mp_element_energies):
    si = si_diamond()
    e = model.predict_energy_per_atom([si])[0]
    assert abs(e - mp_element_energies["Si"]) < 0.03  # MP mp-149: -5.4253 eV/atom, uncorrected GGA
    result = model.calculate(si)
    assert result["energy"] == pytest.approx(e * len(si), abs=1e-3)
    assert result["forces"].shape == (len(si), 3)
    assert np.abs(result["forces"]).max() < 1e-3
    # near SevenNet's own equilibrium: well under the ~2.7 GPa that a 1% strain gives (next test)
    assert np.abs(result["stress"]).max() < 0.3 / EV_PER_A3_IN_GPA


def test_forces_are_minus_the_energy_gradient(model):
    rng = np.random.default_rng(0)
    base = si_diamond()
    s = Structure(base.lattice, base.species, base.cart_coords + rng.normal(0, 0.06, (len(base), 3)),
                  coords_are_cartesian=True)
    forces = model.calculate(s)["forces"]
    h = 0.01
    for atom, axis in ((0, 0), (3, 1), (5, 2)):
        e = []
        for sign in (1, -1):
            moved = s.copy()
            shift = np.zeros(3)
            shift[axis] = sign * h
            moved.translate_sites([atom], shift, frac_coords=False)
            e.append(model.predict_energy_per_atom([moved])[0] * len(s))
        numeric = -(e[0] - e[1]) / (2 * h)
        assert abs(forces[atom, axis]) > 0.05  # the rattle gives real forces to compare
        assert forces[atom, axis] == pytest.approx(numeric, abs=0.01, rel=0.03)


def test_stress_sign_magnitude_and_bulk_modulus(model):
    a0 = 5.469
    stretched, squeezed = si_diamond(a0 * 1.01), si_diamond(a0 * 0.99)
    s_plus, s_minus = model.calculate(stretched)["stress"], model.calculate(squeezed)["stress"]
    # ASE sign: a stretched cell is under tension (positive), a squeezed one under compression
    assert np.all(s_plus[:3] > 0) and np.all(s_minus[:3] < 0)
    assert np.abs(s_plus[3:]).max() < 1e-4  # cubic: no shear
    # sigma_xx = (1/V) dE/d(eps_xx), by finite differences of the energy of the stretched cell
    eps, volume, n = 0.004, stretched.volume, len(stretched)
    energies = []
    for sign in (1, -1):
        strained = stretched.copy()
        strained.apply_strain([sign * eps, 0, 0])
        energies.append(model.predict_energy_per_atom([strained])[0] * n)
    numeric = (energies[0] - energies[1]) / (2 * eps) / volume
    assert s_plus[0] == pytest.approx(numeric, rel=0.05)
    # bulk modulus from the two pressures: silicon's PBE value is about 88 GPa (experiment 98)
    dv_over_v = (stretched.volume - squeezed.volume) / si_diamond(a0).volume
    bulk = (s_plus[:3].mean() - s_minus[:3].mean()) / dv_over_v * EV_PER_A3_IN_GPA
    assert 75 < bulk < 105


def test_batched_equals_single_and_failures_give_nan(model):
    from genms_pmg.structures.diffusion.representation import load_structures_csv

    structures = [si_diamond(), rocksalt(5.69, "Na", "Cl")]
    if VAL_CSV.exists():
        structures += load_structures_csv(VAL_CSV, limit=6)
    batched = model.predict_energy_per_atom(structures, batch_size=16)
    single = np.array([model.predict_energy_per_atom([s])[0] for s in structures])
    assert np.all(np.isfinite(batched))
    np.testing.assert_allclose(batched, single, atol=2e-5)
    # batch of 3 over the same list (several chunks) agrees too
    np.testing.assert_allclose(model.predict_energy_per_atom(structures, batch_size=3), single, atol=2e-5)

    few = structures[:4]
    many = model.calculate_many(few, batch_size=4)
    for s, got in zip(few, many):
        one = model.calculate(s)
        assert got["energy"] == pytest.approx(one["energy"], abs=1e-3)
        np.testing.assert_allclose(got["forces"], one["forces"], atol=2e-4)
        np.testing.assert_allclose(got["stress"], one["stress"], atol=2e-6)

    disordered = si_diamond()
    disordered.replace(0, {"Si": 0.5, "Ge": 0.5})
    polonium = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])  # not in SevenNet's training set
    mixed = model.predict_energy_per_atom([structures[0], disordered, polonium, structures[1]])
    assert np.isnan(mixed[1]) and np.isnan(mixed[2])
    np.testing.assert_allclose(mixed[[0, 3]], single[:2], atol=2e-5)
    with pytest.raises(ValueError, match="not trained on Po"):
        model.calculate(polonium)


# -- MP2020 corrections -------------------------------------------------------------------------


def test_mp2020_correction_of_transition_metal_oxides_matches_the_yaml(model):
    corrections = mp2020_yaml()
    import pymatgen.io.vasp
    import yaml

    mp_relax_set = Path(pymatgen.io.vasp.__file__).parent / "MPRelaxSet.yaml"
    u_values = yaml.safe_load(mp_relax_set.read_text())["INCAR"]["LDAUU"]["O"]
    oxide = corrections["CompositionCorrections"]["oxide"]
    mixing = corrections["GGAUMixingCorrections"]["O"]
    nio, fe2o3 = rocksalt(4.17, "Ni", "O"), corundum_fe2o3()
    assert mp_run_parameters(nio) == {"run_type": "GGA+U", "hubbards": {"Ni": u_values["Ni"]}}
    raw = model.predict_energy_per_atom([nio, fe2o3])
    corrected = model.corrected_energy_per_atom([nio, fe2o3], raw)
    expected = [0.5 * oxide + 0.5 * mixing["Ni"], 0.6 * oxide + 0.4 * mixing["Fe"]]
    np.testing.assert_allclose(corrected - raw, expected, atol=1e-9)


def test_pure_gga_compound_gets_only_the_anion_correction_and_elements_none():
    cl = mp2020_yaml()["CompositionCorrections"]["Cl"]
    nacl, si = rocksalt(5.69, "Na", "Cl"), si_diamond()
    assert mp_run_parameters(nacl) == {"run_type": "GGA", "hubbards": {}}
    out = mp2020_corrected_energy_per_atom([nacl, si, nacl], [-3.4, -5.4, math.nan])
    assert out[0] - (-3.4) == pytest.approx(0.5 * cl, abs=1e-9)
    assert out[1] == pytest.approx(-5.4, abs=1e-12)
    assert math.isnan(out[2])


def test_corrected_formation_energies_match_experiment(model, mp_element_energies):
    """Raw GGA+U NiO against GGA elements is wildly off; the MP2020 scale is within 0.12 eV/atom."""
    structures = {"NiO": rocksalt(4.17, "Ni", "O"), "NaCl": rocksalt(5.69, "Na", "Cl")}
    raw = model.predict_energy_per_atom(list(structures.values()))
    corrected = model.corrected_energy_per_atom(list(structures.values()), raw)
    for (formula, s), e_raw, e_corr in zip(structures.items(), raw, corrected):
        comp = s.composition
        mu = sum(comp.get_atomic_fraction(el) * mp_element_energies[el.symbol] for el in comp.elements)
        kj, atoms = EXPERIMENTAL_DHF[formula]
        experiment = kj / KJ_PER_MOL_PER_EV / atoms
        assert abs((e_corr - mu) - experiment) < 0.12, formula
        if formula == "NiO":
            assert abs((e_raw - mu) - experiment) > 0.5


# -- elemental references -----------------------------------------------------------------------


def test_elemental_references_computed_lazily_and_cached(model, mp_element_energies, tmp_path, monkeypatch):
    from genms_pmg.data.oqmd import ReferenceStructureDB
    from genms_sevennet import SevenNetElementalReferences

    try:
        ReferenceStructureDB.default()  # load the OQMD-ICSD index from the real cache first
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"OQMD-ICSD reference data unavailable: {exc}")
    monkeypatch.setenv("GENMS_DATA_DIR", str(tmp_path))
    refs = SevenNetElementalReferences(model)
    assert "Cu" in refs and "Mo" in refs and "Po" not in refs and "Xx" not in refs
    assert len(refs) == len(list(refs)) > 80
    assert refs.computed() == {}
    cu, mo = refs["Cu"], refs["Mo"]
    assert abs(cu - mp_element_energies["Cu"]) < 0.03  # from OQMD-ICSD fcc Cu, relaxed
    assert refs.details("Cu")["source"].startswith("oqmd-icsd:")
    assert refs.details("Mo")["source"].startswith("ase:")  # no Mo crystal in OQMD-ICSD
    assert abs(mo - mp_element_energies["Mo"]) < 0.1
    bcc = Structure(Lattice.cubic(3.147), ["Mo", "Mo"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert mo <= model.predict_energy_per_atom([bcc])[0] + 1e-6  # a minimum over structures
    with pytest.raises(KeyError):
        refs["Po"]

    files = list(tmp_path.glob("sevennet_elemental_references-v1-*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert doc["version"] == 1 and len(doc["model"]["checkpoint_sha256"]) == 64
    assert set(doc["elements"]) == {"Cu", "Mo"} and doc["elements"]["Cu"]["energy_per_atom"] == cu

    def boom(self, symbol):
        raise AssertionError(f"recomputed {symbol}")

    monkeypatch.setattr(SevenNetElementalReferences, "_compute", boom)
    again = SevenNetElementalReferences(model)
    assert again["Cu"] == cu and again.computed() == {"Cu": cu, "Mo": mo}

    doc["version"] = 0  # a stale format is ignored, not trusted
    files[0].write_text(json.dumps(doc))
    with pytest.raises(AssertionError, match="recomputed Cu"):
        SevenNetElementalReferences(model)["Cu"]


def test_speed_benchmark_script_runs(model, tmp_path, monkeypatch):
    if not VAL_CSV.exists():
        pytest.skip(f"development data not found at {VAL_CSV}")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import energy_model_speed

    import torch

    out = tmp_path / "speed"
    threads = torch.get_num_threads()
    try:
        assert energy_model_speed.main(["--models", "sevennet", "--n", "3", "--repeats", "1", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # the script pins torch to --threads
    doc = json.loads(out.with_suffix(".json").read_text())
    row = doc["rows"][0]
    assert row["model"] == "sevennet" and row["structures"] == 3 and row["nan_energies"] == 0
    assert row["energy_only_structures_per_s"] > 0 and row["efs_forced_batch_s_per_structure"] > 0
    assert "| sevennet | uncorrected |" in out.with_suffix(".md").read_text()


def test_sevennet_ranks_a_search_through_the_cli(tmp_path):
    """`--energy-model sevennet` ranks with SevenNet: relaxation, corrected energies and its own hull."""
    from genms_pmg.cli import main

    assert main(["generate", "a cubic perovskite fluoride containing K", "-n", "1", "--formulas", "2", "--width", "1",
                 "--structures", "1", "--generator", "templates", "--relax-top", "1", "--energy-model", "sevennet",
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    best = results["candidates"][0]["scores"]
    assert best["relaxed"] and math.isfinite(best["e_above_hull"])
    assert best["e_form_per_atom"] < -2.0, "a K fluoride perovskite is strongly bound (corrected energies)"
    assert best["e_above_hull"] < 0.1
