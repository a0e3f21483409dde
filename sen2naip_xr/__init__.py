"""sen2naip_xr: SEN2NAIP-style Sentinel-2 super-resolution datasets as lazy xarray/Dask software.

The data's journey, one module per stage::

    catalog  -> load   -> ops          -> harmonize -> degrade / pipeline -> store -> cli / accessor
    (STAC)      (cubes)   (blur, noise,    (gamma,      (graph over ROIs)    (Zarr)
                           hist. match)     U-Net, VAE)

Quick start (offline)::

    import sen2naip_xr as s2n
    naip = s2n.example_image()                    # 4x1100x1100 NAIP-like DataArray
    tree = s2n.degrade(naip, methods=["identity", "gamma_mvn", "unet", "vae"], noise="real", seed=0)
    lr = tree["lr/lr"].sel(harmonizer="unet")     # S2-like at 10 m, on its own grid: lr.rio.resolution()
    lr.s2n.blank_mask()                           # the accessor delegates to the free functions
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from sen2naip_xr import accessor as _accessor  # noqa: F401  (registers the .s2n accessor)
from sen2naip_xr._const import BANDS
from sen2naip_xr._safe import install_log_redaction as _install_log_redaction
from sen2naip_xr.config import (
    BlurConfig,
    DegradationConfig,
    DegradationModel,
    HarmonizeConfig,
    NoiseConfig,
)
from sen2naip_xr.degrade import DEFAULT_METHODS, build_config, degrade, degrade_with
from sen2naip_xr.errors import (
    CatalogError,
    InputError,
    LoadError,
    MissingDependencyError,
    Sen2NaipError,
    StoreError,
    WeightsError,
)
from sen2naip_xr.harmonize import gamma_values, harmonize, harmonize_with
from sen2naip_xr.ops import add_noise, blank_mask, blur_downsample, histogram_match, is_blank
from sen2naip_xr.scenes import example_image
from sen2naip_xr.weights import weight_path

try:
    __version__ = version("sen2naip-xr")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

# every log record of the process is redacted (signed URLs, account keys): also in Dask workers,
# which import this package when they unpickle a task
_install_log_redaction()

__all__ = [
    "__version__",
    "BANDS",
    "histogram_match",
    "blank_mask",
    "is_blank",
    "blur_downsample",
    "add_noise",
    "harmonize",
    "harmonize_with",
    "gamma_values",
    "degrade",
    "degrade_with",
    "build_config",
    "DEFAULT_METHODS",
    "weight_path",
    "example_image",
    "BlurConfig",
    "NoiseConfig",
    "HarmonizeConfig",
    "DegradationConfig",
    "DegradationModel",
    "Sen2NaipError",
    "InputError",
    "WeightsError",
    "MissingDependencyError",
    "CatalogError",
    "LoadError",
    "StoreError",
]

# --- catalog and load (issue 3) ---
from sen2naip_xr.catalog import (  # noqa: E402
    Candidates,
    PairingConfig,
    RoiConfig,
    SearchConfig,
    items_table,
    open_catalog,
    pair_cross_sensor,
    pair_synthetic,
    rois_from_points,
    rois_from_polygons,
    sample_rois,
    search_items,
    search_pairs,
)
from sen2naip_xr.errors import AssetReadError, SigningError  # noqa: E402
from sen2naip_xr.load import (  # noqa: E402
    CloudConfig,
    LoadConfig,
    PairCubes,
    RetryPolicy,
    cloud_fraction,
    cloud_mask,
    load_failures,
    load_naip,
    load_pairs,
    load_s2,
    load_scl,
    screen_clouds,
    select_roi,
)

__all__ += [
    "Candidates", "PairingConfig", "RoiConfig", "SearchConfig", "items_table", "open_catalog",
    "pair_cross_sensor", "pair_synthetic", "rois_from_points", "rois_from_polygons", "sample_rois",
    "search_items", "search_pairs", "AssetReadError", "SigningError", "CloudConfig", "LoadConfig",
    "PairCubes", "RetryPolicy", "cloud_fraction", "cloud_mask", "load_failures", "load_naip",
    "load_pairs", "load_s2", "load_scl", "screen_clouds", "select_roi",
]

# --- pipeline and store (issue 4) ---
from sen2naip_xr.pipeline import (  # noqa: E402
    BuildResult,
    CrossSensorConfig,
    RunConfig,
    SyntheticConfig,
    build_cross_sensor,
    build_synthetic,
)
from sen2naip_xr.store import DatasetStore, export, metadata_table, open_roi, open_store, summarize  # noqa: E402

__all__ += [
    "BuildResult", "CrossSensorConfig", "RunConfig", "SyntheticConfig", "build_cross_sensor", "build_synthetic",
    "DatasetStore", "export", "metadata_table", "open_roi", "open_store", "summarize",
]

# --- learning and validating the model (issue 5) ---
from sen2naip_xr.fit import FitResult, fit_model  # noqa: E402
from sen2naip_xr.store import cross_sensor_pairs  # noqa: E402
from sen2naip_xr.validate import compare, validate_store, validation_table  # noqa: E402

__all__ += ["FitResult", "fit_model", "cross_sensor_pairs", "compare", "validate_store", "validation_table"]
