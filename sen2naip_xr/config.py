"""Frozen, tokenizable configuration of the degradation model.

The free functions (``blur_downsample``, ``add_noise``, ``harmonize``, ``degrade``) and the CLI fill these
the same way; validation lives here, in ``__post_init__``, so a bad value fails with one message wherever
it comes from. ``__dask_tokenize__`` makes graph keys depend on the configuration, not on object identity.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
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


def canonical_method(name: str) -> str:
    """The canonical name of a harmonization method (``raw`` -> ``identity``, the reference's long names
    -> the short ones); unknown names are returned as they are."""
    return _ALIASES.get(name, name)


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


#: Smallest blur sigma accepted (HR pixels): below it the 13-tap Gaussian is a delta, and at ~1e-20 its
#: float32 taps become 0/0 = NaN.
MIN_SIGMA = 0.01


def _numbers(arg: str, value: Any, fix: str, *, length: int | None = None) -> tuple[float, ...]:
    """``value`` as a tuple of finite floats (of ``length`` when given), or an InputError naming ``arg``."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{arg}={value!r} is not a sequence of numbers; {fix}") from None
    if length is not None and len(out) != length:
        raise InputError(f"{arg}={value!r} has {len(out)} values, not {length}; {fix}")
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise InputError(f"{arg}={out!r} holds non-finite values {bad}; {fix}")
    return out


def _sigmas(arg: str, value: Any) -> tuple[float, ...]:
    fix = f"pass finite positive numbers >= {MIN_SIGMA} (HR pixels), one per band, e.g. (3.0, 2.9, 2.9, 3.4)"
    out = _numbers(arg, value, fix)
    if not out or any(not s >= MIN_SIGMA for s in out):
        raise InputError(f"{arg}={out!r} must be positive (>= {MIN_SIGMA}) for every band; {fix}")
    return out


def _plain(value: Any) -> Any:
    """A JSON-ready copy: dataclasses -> dicts, mappings -> dicts, tuples -> lists (recursively)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


class ConfigBase:
    """The one base of every frozen configuration dataclass of the package.

    It gives each of them the same three things:

    * ``__dask_tokenize__``: the class name and the canonical JSON of :meth:`to_dict`, so graph keys
      depend on the values of the configuration, never on object identity;
    * :meth:`to_dict`: plain dicts/lists (provenance attributes, JSON files);
    * :meth:`replace`: a validated copy with some fields changed.

    Field documentation lives once, in the string literal under each field; :meth:`field_docs` reads it,
    and the CLI builds its flags and their help from it (:func:`sen2naip_xr.config.add_config_arguments`).
    """

    def __dask_tokenize__(self) -> tuple:
        return (type(self).__qualname__, json.dumps(self.to_dict(), sort_keys=True, default=str))

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain Python values (nested configs become dicts, tuples lists)."""
        return _plain(self)  # type: ignore[no-any-return]

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied, validated again by ``__post_init__``."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """The docstring of each field (the string literal written under it in the class body)."""
        return _field_docs(cls)

    @classmethod
    def add_arguments(cls, parser: Any, *, only: Sequence[str] | None = None, exclude: Sequence[str] = (),
                      flags: Mapping[str, str] | None = None) -> None:
        """Add one command-line flag per field to an ``argparse`` parser (or argument group).

        The flag's type, choices and help come from the field: its annotation (``bool`` -> a switch,
        ``Literal[...]`` -> choices, ``tuple[X, ...]`` -> ``nargs="+"``, ``X | None`` -> X), its docstring
        and its default, which the help shows and which stays the dataclass's own: a flag not given is
        not passed (``argparse.SUPPRESS``), so :meth:`from_args` leaves the field to its default.

        Parameters
        ----------
        parser
            An ``argparse.ArgumentParser`` or argument group.
        only, exclude
            Fields to add (default: all) and fields to leave out.
        flags
            Flag names that differ from ``--field-name`` (e.g. ``{"n_workers": "--workers"}``); a boolean
            field whose default is True gets ``--no-<name>`` unless named here.
        """
        import argparse

        flags = dict(flags or {})
        docs = cls.field_docs()
        hints = _hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if (only is not None and f.name not in only) or f.name in exclude:
                continue
            default = _field_default(f)
            kind, choices, elem = _flag_kind(hints[f.name])
            doc = re.sub(r":\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], docs.get(f.name, ""))
            doc = doc.replace("``", "").replace("%", "%%")
            shown = default.source if isinstance(default, DegradationModel) else default
            if isinstance(shown, tuple):
                shown = " ".join(map(str, shown))
            kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
            if kind == "bool":
                if default is True:
                    flag = flags.get(f.name, "--no-" + f.name.replace("_", "-"))
                    kw.update(action="store_false", help=f"{doc} (default: on; this flag turns it off)")
                else:
                    flag = flags.get(f.name, "--" + f.name.replace("_", "-"))
                    kw.update(action="store_true", help=f"{doc} (default: off)")
                parser.add_argument(flag, **kw)
                continue
            flag = flags.get(f.name, "--" + f.name.replace("_", "-"))
            kw["help"] = f"{doc} (default: {shown})"
            if kind == "list":
                kw.update(nargs="+", type=elem)
            elif kind == "model":
                kw.update(type=str, metavar="MODEL_JSON")
            else:
                kw["type"] = elem
            if choices:
                kw["choices"] = choices
            parser.add_argument(flag, **kw)

    @classmethod
    def from_args(cls, args: Any, **overrides: Any) -> Any:
        """The configuration from parsed flags (those :meth:`add_arguments` added and the user gave), plus
        ``overrides``; fields given neither way keep their defaults. Validated as any construction."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        given = {k: v for k, v in vars(args).items() if k in names}
        return cls(**{**given, **overrides})


def _hints(cls: type) -> dict[str, Any]:
    import sys
    import typing

    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _flag_kind(tp: Any) -> tuple[str, tuple | None, Any]:
    """(kind, choices, element type) of a field annotation: kind is bool, list, model or value."""
    import types
    import typing

    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        non_tuple = [a for a in args if typing.get_origin(a) is not tuple]
        tp = non_tuple[0] if len(args) > 1 and non_tuple else args[0]
        args = list(typing.get_args(tp))
    origin = typing.get_origin(tp)
    if tp is bool:
        return "bool", None, bool
    if origin is typing.Literal:
        return "value", tuple(args), type(args[0])
    if origin is tuple:
        elem = args[0] if args else str
        if typing.get_origin(elem) is typing.Literal:
            return "list", tuple(typing.get_args(elem)), str
        return "list", None, elem if elem in (int, float, str) else str
    if tp is DegradationModel:
        return "model", None, str
    if tp in (int, float, str):
        return "value", None, tp
    raise TypeError(f"no command-line flag for a field of type {tp!r}")


@cache
def _field_docs(cls: type) -> dict[str, str]:
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (frozen app): no help text
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(inspect.cleandoc(nxt.value.value).split())
    return docs


@dataclass(frozen=True)
class BlurConfig(ConfigBase):
    """Blur + downsample from NAIP (2.5 m) to Sentinel-2 (10 m)."""

    sigma: tuple[float, ...] = SEN2NAIP_SIGMA
    """Gaussian sigma per band, in HR pixels (13-tap kernel, torch-style reflect padding)."""
    factor: int = 4
    """Downsampling factor (HR pixels per LR pixel along each axis)."""
    mode: Literal["sen2naip", "raw"] = "sen2naip"
    """``"sen2naip"``: Gaussian blur then bilinear 1/factor without antialias (the published model).
    ``"raw"``: the paper's baseline, bilinear with antialias (torch ``antialias=True``) and no Gaussian."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", _sigmas("sigma", self.sigma))
        if self.factor != 4:
            raise InputError(f"factor={self.factor!r} is not supported; SEN2NAIP uses factor=4 (2.5 m -> 10 m)")
        _choice("mode", self.mode, ("sen2naip", "raw"))


@dataclass(frozen=True)
class NoiseConfig(ConfigBase):
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
        try:
            ok = math.isfinite(float(self.sigma)) and float(self.sigma) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"noise_sigma={self.sigma!r} must be a finite number >= 0 (the Gaussian noise sd "
                             "relative to the band RMS), e.g. 0.012")
        object.__setattr__(self, "sigma", float(self.sigma))
        _integer("seed", self.seed)


@dataclass(frozen=True)
class HarmonizeConfig(ConfigBase):
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
        method = canonical_method(self.method)
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
class DegradationModel(ConfigBase):
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
        refit = "fix the model JSON or fit it again (sen2naip-xr fit STORE --out model.json)"
        ln = _numbers("model.lognormal", self.lognormal, f"give (s, loc, scale) of scipy.stats.lognorm; {refit}",
                      length=3)
        if not (ln[0] > 0 and ln[2] > 0):
            raise InputError(f"model.lognormal={ln!r} needs s > 0 and scale > 0 (scipy.stats.lognorm); {refit}")
        mean = _numbers("model.mvn_mean", self.mvn_mean, f"give one mean gamma per band; {refit}")
        if not mean or any(m <= 0 for m in mean):
            raise InputError(f"model.mvn_mean={mean!r} must hold positive gammas, one per band; {refit}")
        n = len(mean)
        try:
            rows = _matrix(self.mvn_cov)
        except (TypeError, ValueError):
            raise InputError(f"model.mvn_cov={self.mvn_cov!r} is not a matrix of numbers; {refit}") from None
        if len(rows) != n or any(len(r) != n for r in rows):
            raise InputError(f"model.mvn_cov must be {n}x{n} to match model.mvn_mean={mean!r}; {refit}")
        cov = [v for r in rows for v in r]
        if not all(math.isfinite(v) for v in cov):
            raise InputError(f"model.mvn_cov holds non-finite values; {refit}")
        if any(abs(rows[i][j] - rows[j][i]) > 1e-9 * max(1.0, abs(rows[i][j])) for i in range(n) for j in range(n)):
            raise InputError(f"model.mvn_cov={rows!r} is not symmetric; a covariance matrix must be; {refit}")
        if not _positive_definite(rows):
            raise InputError(f"model.mvn_cov={rows!r} is not positive definite (a variance <= 0 or perfectly "
                             f"correlated bands); add a small ridge (e.g. 1e-8 on the diagonal) or {refit}")
        sigma = _sigmas("model.sigma", self.sigma)
        if len(sigma) != n:
            raise InputError(f"model.sigma={sigma!r} has {len(sigma)} bands but model.mvn_mean has {n}; {refit}")
        object.__setattr__(self, "lognormal", ln)
        object.__setattr__(self, "mvn_mean", mean)
        object.__setattr__(self, "mvn_cov", rows)
        object.__setattr__(self, "sigma", sigma)
        if self.noise_matrix is not None:
            object.__setattr__(self, "noise_matrix", _noise_matrix(self.noise_matrix, refit))
        object.__setattr__(self, "source", str(self.source))

    def to_json(self, **kwargs: Any) -> str:
        """The model as strict JSON text (what :meth:`save` writes and :meth:`from_json` reads)."""
        from sen2naip_xr._safe import dumps_strict

        return dumps_strict(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "model") -> DegradationModel:
        """A validated model from the dict of :meth:`to_dict` (unknown keys are an error)."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where} is a {type(data).__name__}, not a model dict; write one with "
                             "`sen2naip-xr fit STORE --out model.json`")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise InputError(f"{where} has unknown keys {unknown}; expected {sorted(fields)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str, *, where: str = "model") -> DegradationModel:
        """A validated model from the JSON text of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{where} is not model JSON ({exc}); write one with "
                             "`sen2naip-xr fit STORE --out model.json`") from exc
        return cls.from_dict(data, where=where)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as JSON (strict: no NaN or infinity)."""
        from pathlib import Path

        Path(path).write_text(self.to_json(indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> DegradationModel:
        """Read and validate a model written by :meth:`save` (or by ``sen2naip-xr fit --out model.json``).

        Validation happens here, once: pass the returned object on, not the path.
        """
        from pathlib import Path

        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise InputError(f"model={str(path)!r} is not a readable model JSON ({exc}); write one with "
                             "`sen2naip-xr fit STORE --out model.json`") from exc
        try:
            json.loads(text)
        except ValueError as exc:
            raise InputError(f"model={str(path)!r} is not a readable model JSON ({exc}); write one with "
                             "`sen2naip-xr fit STORE --out model.json`") from exc
        return cls.from_json(text, where=f"model={str(path)!r}")

    @classmethod
    def coerce(cls, model: DegradationModel | str | os.PathLike | Mapping[str, Any] | None,
               arg: str = "model") -> DegradationModel:
        """``model`` as a validated :class:`DegradationModel`.

        Parameters
        ----------
        model
            None (the published model), a model (returned as is), the path of its JSON (read once), or
            the dict of :meth:`to_dict` (validated).
        arg
            The argument's name in error messages.

        Returns
        -------
        DegradationModel
        """
        if model is None:
            return cls()
        if isinstance(model, cls):
            return model
        if isinstance(model, Mapping):
            return cls.from_dict(model, where=arg)
        if isinstance(model, (str, os.PathLike)):
            return cls.load(model)
        raise InputError(f"{arg}={model!r} is not a model; pass a DegradationModel, the path of its JSON "
                         "(sen2naip-xr fit --out model.json) or None for the published model")


def _positive_definite(rows: tuple[tuple[float, ...], ...]) -> bool:
    """Cholesky without numpy: True when every pivot is positive."""
    n = len(rows)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            acc = rows[i][j] - sum(low[i][k] * low[j][k] for k in range(j))
            if i == j:
                if not acc > 0:
                    return False
                low[i][i] = math.sqrt(acc)
            else:
                low[i][j] = acc / low[j][j]
    return True


def _noise_matrix(value: Any, refit: str) -> tuple[tuple[float, ...], ...]:
    shape = "101x101 (rows: reflectance bins, columns: noise values; each row a probability distribution)"
    try:
        m = _matrix(value)
    except (TypeError, ValueError):
        raise InputError(f"model.noise_matrix is not a matrix of numbers; it must be {shape}; {refit}") from None
    if len(m) != 101 or any(len(r) != 101 for r in m):
        got = f"{len(m)}x{len(m[0]) if m else 0}" if len({len(r) for r in m}) <= 1 else "ragged"
        raise InputError(f"model.noise_matrix is {got}; it must be {shape}; {refit}")
    for i, r in enumerate(m):
        if not all(math.isfinite(v) for v in r):
            raise InputError(f"model.noise_matrix row {i} holds NaN or infinite values; it must be {shape}; {refit}")
        if any(v < 0 for v in r):
            raise InputError(f"model.noise_matrix row {i} holds negative probabilities; it must be {shape}; {refit}")
        if abs(sum(r) - 1) > 1e-6:
            raise InputError(f"model.noise_matrix row {i} sums to {sum(r):.6g}, not 1; it must be {shape}; {refit}")
    return m


@dataclass(frozen=True)
class DegradationConfig(ConfigBase):
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
