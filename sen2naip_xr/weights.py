"""Registry of the published SEN2NAIP harmonizer weights.

The weights ship inside the PyPI wheel ``opensr-degradation==1.0.1`` (MIT). They are found in that
installed distribution by its file list -- the package itself is never imported (its import needs
undeclared dependencies) -- or in a folder given explicitly or by the ``SEN2NAIP_XR_WEIGHTS`` environment
variable. Every file is checked against its published sha256 once per process.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from sen2naip_xr.errors import WeightsError

ENV_VAR = "SEN2NAIP_XR_WEIGHTS"
DISTRIBUTION = "opensr-degradation"
DIST_VERSION = "1.0.1"
INSTALL_HINT = f'pip install --no-deps "{DISTRIBUTION}=={DIST_VERSION}"'
_DIST_FOLDER = "opensr_degradation/naipd/models"


@dataclass(frozen=True)
class WeightFile:
    """One published model file."""

    name: str
    """File name inside the wheel's ``naipd/models`` folder."""
    size: int
    """Size in bytes."""
    sha256: str
    """Published sha256 checksum."""
    what: str
    """What the file holds."""


WEIGHTS: dict[str, WeightFile] = {
    "unet": WeightFile("model_unet.pt", 36_040_856,
                       "c953d08e17077430b1ee02e01d86ae48e9d3354ca1d7b6ce4ecaaf4593ddd144",
                       "TorchScript U-Net (EfficientNet-B1 encoder), NAIP -> S2 reflectance"),
    "vae": WeightFile("model_vae.pt", 2_098_000,
                      "1975b0176ae162e02c3de98bef172f69c56b0aaaf0e3ff15ff3908e4139c8fa3",
                      "state dict of SimpleVAE(4x120 histograms, latent 20)"),
    "noise": WeightFile("model_noise.pt", 82_359,
                        "7153538a0810a72d34459a18ec063d1a2e238d91760453137fb525906930bb34",
                        "101x101 float64 reflectance-to-noise matrix"),
}


def _candidate_folders(folder: str | os.PathLike | None) -> list[tuple[str, Path]]:
    if folder is not None:
        return [("argument weights", Path(folder))]
    if os.environ.get(ENV_VAR):
        return [(f"${ENV_VAR}", Path(os.environ[ENV_VAR]))]
    try:
        dist = distribution(DISTRIBUTION)
    except PackageNotFoundError:
        return []
    return [(f"installed {DISTRIBUTION} {dist.version}", Path(str(dist.locate_file(_DIST_FOLDER))))]


@lru_cache(maxsize=32)
def _verified(path: str, size: int, mtime_ns: int, sha256: str) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == sha256


def weight_path(model: str, folder: str | os.PathLike | None = None, *, verify: bool = True) -> Path:
    """Path of a published model file (``"unet"``, ``"vae"`` or ``"noise"``), checked against its sha256.

    Looks in ``folder`` when given, else in ``$SEN2NAIP_XR_WEIGHTS``, else in the installed
    ``opensr-degradation`` distribution. Raises :class:`WeightsError` with the install command when the
    file is missing or corrupt.

    Parameters
    ----------
    model
        ``"unet"``, ``"vae"`` or ``"noise"``.
    folder
        A folder holding the published files (the argument ``weights=`` of the operators).
    verify
        Check the sha256 (once per process and file).

    Returns
    -------
    pathlib.Path
        The file.
    """
    if model not in WEIGHTS:
        raise WeightsError(f"model={model!r} is unknown; use one of {sorted(WEIGHTS)}")
    spec = WEIGHTS[model]
    candidates = _candidate_folders(folder)
    if not candidates:
        raise WeightsError(
            f"{spec.name} ({spec.what}) not found: {DISTRIBUTION} is not installed and ${ENV_VAR} is unset. "
            f"Install the published weights with:  {INSTALL_HINT}  (or set {ENV_VAR} to a folder holding "
            f"{', '.join(w.name for w in WEIGHTS.values())})"
        )
    source, base = candidates[0]
    path = base / spec.name
    if not path.is_file():
        raise WeightsError(
            f"{spec.name} not found in {base} ({source}). Install the published weights with:  {INSTALL_HINT}"
        )
    if verify:
        st = path.stat()
        if st.st_size != spec.size or not _verified(str(path), st.st_size, st.st_mtime_ns, spec.sha256):
            raise WeightsError(
                f"{path} ({source}) is corrupt: its sha256 differs from the published {spec.sha256}. "
                f"Reinstall with:  pip install --force-reinstall {INSTALL_HINT.removeprefix('pip install ')}"
            )
    return path


@lru_cache(maxsize=8)
def _noise_matrix(path: str):
    from sen2naip_xr import _torchfile

    return _torchfile.load(path)


def noise_matrix(folder: str | os.PathLike | None = None):
    """The published (101, 101) float64 reflectance-to-noise matrix, read once per process."""
    return _noise_matrix(str(weight_path("noise", folder)))


@lru_cache(maxsize=8)
def _vae_state(path: str):
    from sen2naip_xr import _torchfile

    return dict(_torchfile.load(path))


def vae_state(folder: str | os.PathLike | None = None) -> dict:
    """The published VAE state dict as numpy arrays, read once per process."""
    return _vae_state(str(weight_path("vae", folder)))
