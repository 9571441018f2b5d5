"""Entry-point plugins: discovery without importing, loading on use, errors that name the culprit.

Five groups (see ``../shared/GUIDE.md``): ``genms.proposers``, ``genms.formula_heuristics``,
``genms.structure_generators``, ``genms.structure_heuristics`` and ``genms.energy_models``. The
built-ins are registered through the same groups in GenMS's own ``setup.cfg``, so a third-party
plugin takes exactly the same path. Discovery uses the standard library's ``importlib.metadata``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Literal

from genms_pmg.errors import PluginError

GroupName = Literal[
    "proposers", "formula_heuristics", "structure_generators", "structure_heuristics", "energy_models"
]
GROUPS: tuple[str, ...] = (
    "proposers",
    "formula_heuristics",
    "structure_generators",
    "structure_heuristics",
    "energy_models",
)
PluginState = Literal["available", "loaded", "broken", "duplicate"]


def _base_class(group: str) -> type:
    """The class every plugin of ``group`` must subclass (imported lazily: torch is heavy)."""
    if group == "proposers":
        from genms_pmg.formulas.base import FormulaProposer as base
    elif group == "formula_heuristics":
        from genms_pmg.formulas.base import FormulaHeuristic as base
    elif group == "structure_generators":
        from genms_pmg.structures.base import CrystalGenerator as base
    elif group == "structure_heuristics":
        from genms_pmg.structures.base import StructureHeuristic as base
    elif group == "energy_models":
        from genms_pmg.energy.base import EnergyModel as base
    else:
        raise PluginError(f"unknown plugin group {group!r}; the groups are: {', '.join(GROUPS)}")
    return base


@dataclass
class PluginInfo:
    """One registered plugin as discovery sees it.

    Attributes:
        group: short group name ("proposers", ...); the entry-point group is ``genms.<group>``.
        name: entry-point name, the name users pass on the command line.
        value: ``module:attribute`` the entry point points to.
        distribution: the installed distribution that registers it.
        state: "available" (not imported yet), "loaded", "broken" or "duplicate".
        error: why it is broken or duplicated.
    """

    group: str
    name: str
    value: str
    distribution: str
    state: PluginState = "available"
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _entry_points(group: str) -> list[tuple[metadata.EntryPoint, str]]:
    """Entry points of ``genms.<group>`` with their distribution names, de-duplicated.

    The same distribution can be seen twice (an editable install beside a stale egg-info);
    identical (name, value, distribution) triples count once.
    """
    seen: set[tuple[str, str, str]] = set()
    found: list[tuple[metadata.EntryPoint, str]] = []
    for dist in metadata.distributions():
        try:
            dist_name = dist.metadata["Name"] or "?"
            eps = dist.entry_points
        except Exception:  # a broken distribution must not break discovery
            continue
        for ep in eps:
            if ep.group != f"genms.{group}":
                continue
            key = (ep.name, ep.value, dist_name.lower().replace("_", "-"))
            if key not in seen:
                seen.add(key)
                found.append((ep, dist_name))
    return sorted(found, key=lambda item: (item[0].name, item[1]))


_LOADED: dict[tuple[str, str], type] = {}


def discover(group: str | None = None) -> list[PluginInfo]:
    """List plugins without importing them (state "available", or "duplicate" on a name clash)."""
    groups = GROUPS if group is None else (group,)
    infos: list[PluginInfo] = []
    for g in groups:
        if g not in GROUPS:
            raise PluginError(f"unknown plugin group {g!r}; the groups are: {', '.join(GROUPS)}")
        entries = _entry_points(g)
        names = [ep.name for ep, _ in entries]
        for ep, dist in entries:
            info = PluginInfo(group=g, name=ep.name, value=ep.value, distribution=dist)
            if names.count(ep.name) > 1:
                others = sorted(d for e, d in entries if e.name == ep.name and d != dist) or [dist]
                info.state = "duplicate"
                info.error = f"the name {ep.name!r} is also registered by {', '.join(others)}; uninstall one of them"
            elif (g, ep.name) in _LOADED:
                info.state = "loaded"
            infos.append(info)
    return infos


def check_all(group: str | None = None) -> list[PluginInfo]:
    """Discover and try to load every plugin, recording each one's state (for ``genms plugins``)."""
    infos = discover(group)
    for info in infos:
        if info.state == "duplicate":
            continue
        try:
            load(info.group, info.name)
            info.state = "loaded"
        except PluginError as err:
            info.state = "broken"
            info.error = str(err)
    return infos


def load(group: str, name: str) -> type:
    """Import the plugin class ``name`` of ``group`` and check it subclasses the group's base.

    Raises:
        PluginError: unknown name (the message lists the known ones), duplicate registration,
            import failure or wrong base class; the message names group, entry point,
            distribution and cause.
    """
    if (group, name) in _LOADED:
        return _LOADED[(group, name)]
    base = _base_class(group)
    matches = [(ep, dist) for ep, dist in _entry_points(group) if ep.name == name]
    if not matches:
        known = ", ".join(info.name for info in discover(group)) or "none"
        raise PluginError(
            f"no plugin named {name!r} in genms.{group}; installed: {known} (see `genms plugins`)"
        )
    if len(matches) > 1:
        dists = ", ".join(dist for _, dist in matches)
        raise PluginError(f"plugin name {name!r} in genms.{group} is registered twice ({dists}); uninstall one")
    ep, dist = matches[0]
    where = f"plugin {name!r} (genms.{group} -> {ep.value}, from {dist})"
    try:
        obj = ep.load()
    except Exception as err:  # any import-time failure is the plugin's, reported as such
        cause = f"{type(err).__name__}: {err}".splitlines()[0]
        raise PluginError(f"{where} failed to load: {cause}") from err
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise PluginError(f"{where} is not a subclass of {base.__module__}.{base.__name__}; fix the entry point")
    _LOADED[(group, name)] = obj
    return obj


def create(group: str, name: str, **options: Any) -> Any:
    """Load plugin ``name`` and instantiate it with keyword ``options``."""
    cls = load(group, name)
    try:
        return cls(**options)
    except TypeError as err:
        raise PluginError(f"plugin {name!r} in genms.{group} rejected its options {sorted(options)}: {err}") from err


def create_all(group: str, *, exclude: tuple[str, ...] = (), include: tuple[str, ...] = ()) -> dict[str, Any]:
    """Instantiate every working plugin of ``group``; broken ones are skipped with a warning.

    One broken plugin never stops the search: the rest carry on. A plugin class with a true
    ``opt_in`` attribute (e.g. LLM ranking, which calls a network endpoint) is made only when
    ``include`` names it, so installing it never changes the default search.
    """
    plugins: dict[str, Any] = {}
    for info in discover(group):
        if info.name in exclude:
            continue
        if info.state == "duplicate":
            warnings.warn(f"genms: skipping {info.name!r} in genms.{group}: {info.error}", stacklevel=2)
            continue
        try:
            if getattr(load(group, info.name), "opt_in", False) is True and info.name not in include:
                continue
            plugins[info.name] = create(group, info.name)
        except PluginError as err:
            warnings.warn(f"genms: skipping broken plugin: {err}", stacklevel=2)
    return plugins
