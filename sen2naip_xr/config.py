"""Frozen, tokenizable configuration of the degradation model.

The free functions (``blur_downsample``, ``add_noise``, ``harmonize``, ``degrade``) and the CLI fill these
the same way; validation lives here, in ``__post_init__``, so a bad value fails with one message wherever
it comes from. ``__dask_tokenize__`` makes graph keys depend on the configuration, not on object identity.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sen2naip_xr.errors import InputError

Method = Literal["identity", "gamma_lognormal", "gamma_mvn", "unet", "vae"]
METHODS: tuple[str, ...] = ("identity", "gamma_lognormal", "gamma_mvn", "unet", "vae")
_ALIASES = {"raw": "identity", "gamma_multivariate_normal": "gamma_mvn",
            "unet_histogram_matching": "unet", "vae_histogram_matching": "vae"}

#: Per-band Gaussian sigma (R, G, B, NIR) of the published SEN2NAIP blur model, in HR pixels.
SEN2NAIP_SIGMA: tuple[float, ...] = (3.0, 2.9, 2.9, 3.4)
#: Published lognormal gamma model (scipy ``lognorm(s, loc, scale)``), opensr-degradation 1.0.1.
PUBLISHED_LOGNORMAL: tuple[float, float, float] = (0.08328806939205786, -0.5100939882738114, 0.890445913241666)
#: Published multivariate normal gamma model (R, G, B, NIR), opensr-degradation 1.0.1.
PUBLISHED_MVN_MEAN: tuple[float, ...] = (0.33212655, 0.32608668, 0.35346831, 0.45705735)
PUBLISHED_MVN_COV: tuple[tuple[float, ...], ...] = (
    (0.0059202, 0.00507745, 0.00445213, 0.00364854),
    (0.00507745, 0.00494151, 0.00445722, 0.00381408),
    (0.00445213, 0.00445722, 0.00485922, 0.00329423),
    (0.00364854, 0.00381408, 0.00329423, 0.01427048),
)


def _choice(arg: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"{arg}={value!r} is not supported; use one of {', '.join(map(repr, allowed))}")


def _integer(arg: str, value: Any, minimum: int | None = None) -> None:
    try:
        ok = int(value) == value and (minimum is None or value >= minimum)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        bound = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise InputError(f"{arg}={value!r} must be {bound}, e.g. {1 if minimum else 0}")


class _Config:
    """Shared behaviour: dask tokens, dicts for provenance attrs, ``replace``."""

    def __dask_tokenize__(self) -> tuple:
        return (type(self).__name__, json.dumps(self.to_dict(), sort_keys=True, default=str))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class BlurConfig(_Config):
    """Blur + downsample from NAIP (2.5 m) to Sentinel-2 (10 m)."""

    sigma: tuple[float, ...] = SEN2NAIP_SIGMA
    """Gaussian sigma per band, in HR pixels (13-tap kernel, torch-style reflect padding)."""
    factor: int = 4
    """Downsampling factor (HR pixels per LR pixel along each axis)."""
    mode: Literal["sen2naip", "raw"] = "sen2naip"
    """``"sen2naip"``: Gaussian blur then bilinear 1/factor without antialias (the published model).
    ``"raw"``: the paper's baseline, bilinear with antialias (torch ``antialias=True``) and no Gaussian."""

    def __post_init__(self) -> None:
        hint = "must be positive numbers, one per band, e.g. (3.0, 2.9, 2.9, 3.4)"
        try:
            object.__setattr__(self, "sigma", tuple(float(s) for s in self.sigma))
        except (TypeError, ValueError):
            raise InputError(f"sigma={self.sigma!r} {hint}") from None
        if not self.sigma or any(not (s > 0) for s in self.sigma):
            raise InputError(f"sigma={self.sigma!r} {hint}")
        if self.factor != 4:
            raise InputError(f"factor={self.factor!r} is not supported; SEN2NAIP uses factor=4 (2.5 m -> 10 m)")
        _choice("mode", self.mode, ("sen2naip", "raw"))


@dataclass(frozen=True)
class NoiseConfig(_Config):
    """Sensor noise added to the LR image."""

    model: Literal["real", "gaussian", "none"] = "real"
    """``"real"``: sampled from the published reflectance-to-noise matrix; ``"gaussian"``: N(0, sigma x band
    RMS); ``"none"``: no noise."""
    sigma: float = 0.012
    """Relative sd of the Gaussian model (the paper's 0.012; the reference code uses 0.025)."""
    seed: int = 0
    """Seed; the random stream of each pixel derives from (seed, method label, position)."""

    def __post_init__(self) -> None:
        if self.model is None:
            object.__setattr__(self, "model", "none")
        _choice("noise", self.model, ("real", "gaussian", "none"))
        if not (self.sigma >= 0):
            raise InputError(f"sigma={self.sigma!r} must be >= 0 (relative noise sd, e.g. 0.012)")
        _integer("seed", self.seed)


@dataclass(frozen=True)
class HarmonizeConfig(_Config):
    """One harmonization (NAIP reflectance -> Sentinel-2 reflectance)."""

    method: Method = "identity"
    """``identity`` | ``gamma_lognormal`` | ``gamma_mvn`` | ``unet`` | ``vae`` (aliases: ``raw``, the reference's names)."""
    percentile: float = 50.0
    """Percentile of the gamma distribution (gamma methods only), in (0, 100)."""
    pooled: bool = False
    """gamma_mvn: one gamma pooled over the 4 bands, as the reference code computes; default per band."""
    gamma: float | tuple[float, ...] | None = None
    """Gamma methods: explicit gamma per band (or one for all), overriding the distribution's percentile
    (e.g. a fitted value, or the value the reference drew)."""
    quantize: Literal["none", "u8"] = "none"
    """Gamma methods: ``"u8"`` first truncates to uint8 like the reference (wrapping out-of-range values)."""
    at: Literal["lr", "hr"] = "lr"
    """Networks: ``"lr"`` runs them on NAIP degraded to 10 m (paper, Fig. 5A); ``"hr"`` at 2.5 m (reference code)."""
    sample: bool = False
    """VAE: decode a seeded latent sample instead of the mean."""
    template: Literal["exact", "legacy"] = "exact"
    """VAE: ``"exact"`` matches to the decoded distribution itself; ``"legacy"`` draws the reference's random
    fake image with ``numpy.random.RandomState(seed)`` (reproduces the reference bit for bit)."""
    seed: int = 0
    """Seed for the VAE's latent sample (``sample=True``) or legacy template."""
    device: str = "auto"
    """Torch device for the networks: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``."""
    batch_size: int = 16
    """Images per network forward pass."""
    weights: str | None = None
    """Folder with the model files; default: the installed opensr-degradation wheel or ``SEN2NAIP_XR_WEIGHTS``."""
    checkpoint: str | None = None
    """Networks: a user-trained model file (``sen2naip_xr.train``) used instead of the published weights:
    TorchScript for ``unet``, a state dict for ``vae``. Not checksummed."""

    def __post_init__(self) -> None:
        method = _ALIASES.get(self.method, self.method)
        object.__setattr__(self, "method", method)
        _choice("method", method, METHODS)
        if not (0 < float(self.percentile) < 100):
            raise InputError(f"percentile={self.percentile!r} must lie in (0, 100), e.g. 50")
        object.__setattr__(self, "percentile", float(self.percentile))
        if self.gamma is not None:
            gam = (self.gamma,) if isinstance(self.gamma, (int, float)) else tuple(self.gamma)
            if len(gam) not in (1, 4) or any(not (float(g) > 0) for g in gam):
                raise InputError(f"gamma={self.gamma!r} must be one positive number or four (R, G, B, NIR)")
            object.__setattr__(self, "gamma", tuple(float(g) for g in gam))
        _choice("quantize", self.quantize, ("none", "u8"))
        _choice("at", self.at, ("lr", "hr"))
        _choice("template", self.template, ("exact", "legacy"))
        _integer("seed", self.seed)
        _integer("batch_size", self.batch_size, minimum=1)

    @property
    def label(self) -> str:
        """Name of this variant in the ``harmonizer`` coordinate, e.g. ``gamma_mvn_p50``."""
        if self.method.startswith("gamma") and self.gamma is not None:
            return f"{self.method}_" + "_".join(f"{g:.4g}" for g in self.gamma)  # type: ignore[union-attr]
        if self.method.startswith("gamma"):
            p = self.percentile
            return f"{self.method}_p{int(p) if p == int(p) else p}"
        return self.method


def _matrix(value) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in value)


@dataclass(frozen=True)
class DegradationModel(_Config):
    """Parameters of the degradation model: the published ones by default, or fitted from cross-sensor
    pairs (``sen2naip-xr fit``). Saved and read as JSON with :meth:`save` / :meth:`load`."""

    lognormal: tuple[float, float, float] = PUBLISHED_LOGNORMAL
    """gamma_lognormal: scipy ``lognorm`` parameters (s, loc, scale) of the gamma distribution."""
    mvn_mean: tuple[float, ...] = PUBLISHED_MVN_MEAN
    """gamma_mvn: mean of the per-band (R, G, B, NIR) gamma vector."""
    mvn_cov: tuple[tuple[float, ...], ...] = PUBLISHED_MVN_COV
    """gamma_mvn: 4x4 covariance of the gamma vector."""
    sigma: tuple[float, ...] = SEN2NAIP_SIGMA
    """Gaussian blur sigma per band, in HR (2.5 m) pixels."""
    noise_matrix: tuple[tuple[float, ...], ...] | None = None
    """101x101 reflectance-to-noise matrix (rows: ``np.digitize(v, arange(0, 0.5, 0.005))``; columns: noise
    values ``arange(-0.0101, 0.0101, 0.0002)``); None: the published ``model_noise.pt``."""
    source: str = "published"
    """Where the parameters come from (e.g. ``published``, or the store they were fitted on)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lognormal", tuple(float(v) for v in self.lognormal))
        object.__setattr__(self, "mvn_mean", tuple(float(v) for v in self.mvn_mean))
        object.__setattr__(self, "mvn_cov", _matrix(self.mvn_cov))
        object.__setattr__(self, "sigma", tuple(float(v) for v in self.sigma))
        if len(self.lognormal) != 3:
            raise InputError(f"lognormal={self.lognormal!r} must be (s, loc, scale)")
        n = len(self.mvn_mean)
        if len(self.mvn_cov) != n or any(len(r) != n for r in self.mvn_cov):
            raise InputError(f"mvn_cov must be {n}x{n} to match mvn_mean={self.mvn_mean!r}")
        if any(not (s > 0) for s in self.sigma):
            raise InputError(f"sigma={self.sigma!r} must be positive, one per band")
        if self.noise_matrix is not None:
            m = _matrix(self.noise_matrix)
            if len(m) != 101 or any(len(r) != 101 for r in m) or any(abs(sum(r) - 1) > 1e-6 for r in m):
                raise InputError("noise_matrix must be 101x101 with rows summing to 1 (see DegradationModel docs)")
            object.__setattr__(self, "noise_matrix", m)

    def save(self, path) -> None:
        """Write the model as JSON."""
        from pathlib import Path

        from sen2naip_xr._safe import dumps_strict

        Path(path).write_text(dumps_strict(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path) -> DegradationModel:
        """Read a model written by :meth:`save` (or by ``sen2naip-xr fit --out model.json``)."""
        from pathlib import Path

        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"model={str(path)!r} is not a readable model JSON ({exc}); write one with "
                             "`sen2naip-xr fit STORE --out model.json`") from exc
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise InputError(f"model={str(path)!r} has unknown keys {unknown}; expected {sorted(fields)}")
        return cls(**data)


@dataclass(frozen=True)
class DegradationConfig(_Config):
    """The whole degradation model: every harmonization variant, then blur/downsample and noise."""

    methods: tuple[HarmonizeConfig, ...] = field(default_factory=lambda: (HarmonizeConfig(),))
    """Harmonization variants, one output per variant along the ``harmonizer`` dim."""
    blur: BlurConfig = field(default_factory=BlurConfig)
    """Blur + downsample."""
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    """LR noise."""
    model: DegradationModel = field(default_factory=DegradationModel)
    """Distribution parameters of the gamma methods and the noise matrix (published by default)."""

    def __post_init__(self) -> None:
        labels = [m.label for m in self.methods]
        if not labels:
            raise InputError("methods=[] is empty; pass at least one of " + ", ".join(METHODS))
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise InputError(f"methods lists {dup} more than once; each variant must be unique")
