"""What `genms generate --out` writes besides results.json: symmetrized CIFs and pictures.

Why symmetrized: a chemist opens a CIF to see the space group and Wyckoff sites, not a P1 list of
relaxed coordinates; ``CifWriter(symprec=0.1)`` in the conventional standard cell gives both.
Pictures (ASE's matplotlib renderer, pymatgen's ``PDPlotter``) let a user judge at a glance what
the table says in numbers. Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

from pymatgen.core import Structure

from genms_pmg.data.cache import write_atomic


def save_figure(fig, path: Path, *, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG atomically (rendered in memory, then one atomic write)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def symmetrized_cif(structure: Structure, *, symprec: float = 0.1) -> str:
    """CIF text of the conventional standard cell with its space group (P1 when spglib fails)."""
    from pymatgen.io.cif import CifWriter
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        conventional = SpacegroupAnalyzer(structure, symprec=symprec).get_conventional_standard_structure()
        return str(CifWriter(conventional, symprec=symprec))
    except Exception:  # noqa: BLE001 - spglib fails on degenerate cells: write what we have
        return str(CifWriter(structure))


def write_cif(structure: Structure, path: Path) -> None:
    """Write :func:`symmetrized_cif` to ``path`` atomically."""
    write_atomic(path, symmetrized_cif(structure).encode())


def write_structure_png(structure: Structure, path: Path, *, title: str = "") -> None:
    """A picture of the cell (ASE's matplotlib renderer, slightly rotated so depth shows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase.visualize.plot import plot_atoms
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    plot_atoms(atoms, ax, rotation="10x,20y,0z", radii=0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    save_figure(fig, path)
    plt.close(fig)


def write_hull_png(entries, path: Path, *, title: str = "") -> None:
    """pymatgen ``PDPlotter`` (matplotlib backend) of a ternary system with the candidates marked."""
    import matplotlib

    matplotlib.use("Agg")
    import logging
    import warnings

    import matplotlib.pyplot as plt
    from pymatgen.analysis.phase_diagram import PDPlotter, PhaseDiagram

    diagram = PhaseDiagram(entries)
    plotter = PDPlotter(diagram, backend="matplotlib", show_unstable=0.2)
    logging.getLogger("matplotlib").setLevel(logging.ERROR)  # "Ignoring fixed y limits ..." noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ax = plotter.get_plot(label_unstable=False)
    fig = ax.figure if hasattr(ax, "figure") else plt.gcf()
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
    plt.close("all")


def write_pictures(candidates, out: Path, energy_model) -> list[str]:
    """rank-NN-<formula>.png for each candidate and hull-<system>.png per ternary system."""
    from genms_pmg.energy.hull import chemsys_key, competing_phases

    written: list[str] = []
    systems: dict[str, list] = {}
    for cand in candidates:
        name = f"rank-{cand.rank:02d}-{safe_name(cand.formula)}.png"
        e_hull = cand.scores.get("e_above_hull")
        label = f"{cand.formula} {cand.scores.get('space_group', '')}" + (
            f", E_hull {e_hull:+.3f} eV/atom" if isinstance(e_hull, float) else "")
        try:
            write_structure_png(cand.structure, out / name, title=label)
            written.append(name)
        except Exception:  # noqa: BLE001 - a picture is a courtesy, never a reason to lose results
            pass
        elements = [el.symbol for el in cand.structure.composition.elements]
        if len(elements) == 3 and cand.scores.get("corrected_energy_per_atom") is not None:
            systems.setdefault(chemsys_key(elements), []).append(cand)
    if energy_model is None:
        return written
    phases = competing_phases(energy_model)
    for system, cands in systems.items():
        try:
            entries, _ = phases.entries(system.split("-"))
            from pymatgen.analysis.phase_diagram import PDEntry

            for c in cands:
                comp = c.structure.composition
                entries.append(PDEntry(comp, c.scores["corrected_energy_per_atom"] * comp.num_atoms,
                                       name=f"{c.formula} (rank {c.rank})"))
            name = f"hull-{system}.png"
            write_hull_png(entries, out / name, title=f"{system}: known phases and GenMS candidates")
            written.append(name)
        except Exception:  # noqa: BLE001
            pass
    return written


def safe_name(formula: str) -> str:
    """A file-name-safe spelling of a formula."""
    return "".join(ch for ch in formula if ch.isalnum()) or "structure"
