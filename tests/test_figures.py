"""Every figure renders, reads on its own (title naming the model, labelled axes, legend, >= 9 pt text) and
stretches each image panel on its own (no black panel beside a bright one)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import sen2naip_xr as s2n
from sen2naip_xr import figures
from sen2naip_xr.fit import FitResult

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def captured(monkeypatch):
    """The matplotlib figures the functions save, kept open for inspection."""
    figs = []
    real = figures._save

    def keep(fig, path, dpi=110):
        figs.append(fig)
        fig.savefig(path, dpi=dpi)
        return path

    monkeypatch.setattr(figures, "_save", keep)
    yield figs
    monkeypatch.setattr(figures, "_save", real)
    plt = figures._pyplot()
    for f in figs:
        plt.close(f)


def _readable(fig, *, model: str) -> None:
    from matplotlib.text import Text

    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
    small = sorted({(t.get_text()[:30], t.get_fontsize()) for t in texts if t.get_fontsize() < 9})
    assert not small, f"text under 9 pt: {small}"
    assert model in fig._suptitle.get_text()
    labelled = [ax for ax in fig.axes if ax.get_xlabel()]
    assert labelled, "no labelled axis"
    assert any(ax.get_legend() for ax in fig.axes) or fig.legends, "no legend"


def _panel_brightness(fig) -> list[float]:
    return [float(im.get_array().mean()) for ax in fig.axes for im in ax.get_images()]


def _fake_fit(n: int) -> FitResult:
    rng = np.random.default_rng(0)
    gammas = pd.DataFrame(rng.normal([0.33, 0.33, 0.35, 0.46], 0.01, (n, 4)), columns=list(s2n.BANDS))
    sig = np.arange(1.0, 5.01, 0.1)
    curves = xr.DataArray(np.stack([(sig - s) ** 2 / 100 + 0.001 for s in (3.2, 2.8, 2.6, 3.6)], 1),
                          dims=("sigma", "band"), coords={"sigma": sig, "band": list(s2n.BANDS)})
    model = s2n.DegradationModel(mvn_mean=tuple(gammas.mean()), mvn_cov=np.cov(gammas.T.values).tolist(),
                                 sigma=(3.2, 2.8, 2.6, 3.6))
    return FitResult(model=model, gammas=gammas, ks={b: {"statistic": 0.2, "pvalue": 0.5} for b in s2n.BANDS},
                     sigma_curves=curves, shifts=np.zeros((n, 2)))


def test_degradation_and_comparison_figures_stretch_each_panel(tmp_path, captured):
    naip = s2n.example_image(size=96, seed=0)
    tree = s2n.degrade(naip, ["identity", "gamma_mvn", "vae"], noise="none")
    png = figures.degradation_figure(naip, tree["lr"].ds, tmp_path / "deg.png", title="t")
    assert png.read_bytes()[:8] == PNG
    _readable(captured[-1], model="published model")
    # the dark gamma panel is as bright on screen as the others: each panel has its own stretch
    means = _panel_brightness(captured[-1])
    assert min(means) > 0.2, means
    assert "2-98th percentiles" in captured[-1]._supxlabel.get_text()

    s2 = tree["lr/lr"].sel(harmonizer="gamma_mvn").expand_dims(pair=2).copy()
    sims = tree["lr/lr"].expand_dims(pair=2, axis=1)
    figures.comparison_figure(s2, sims, tmp_path / "fig9.png", model="fitted model m.json")
    _readable(captured[-1], model="fitted model m.json")
    assert min(_panel_brightness(captured[-1])) > 0.2

    figures.dataset_preview([("NAIP", naip.values), ("S2", tree["lr/lr"].values[1])], tmp_path / "prev.png")
    _readable(captured[-1], model="published model")


@pytest.mark.parametrize("n", [4, 40])
def test_gamma_density_figure_is_sensible_at_small_and_large_n(tmp_path, captured, n):
    figures.gamma_density_figure(_fake_fit(n), tmp_path / "fig4.png", model="fitted model")
    fig = captured[-1]
    _readable(fig, model="fitted model")
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        assert lo < 0.3 and hi > 0.45  # the published curve (means 0.33-0.46) is on the axis
        assert ax.get_ylim()[1] < 100  # no 0.001-wide bins with density 3000
    assert ("one tick per pair" in fig.legends[0].texts[0].get_text()) == (n < 10)


def test_sigma_sweep_figure(tmp_path, captured):
    figures.sigma_sweep_figure(_fake_fit(5), tmp_path / "fig6.png", truth=(3.2, 2.8, 2.6, 3.6))
    fig = captured[-1]
    from matplotlib.text import Text

    assert all(t.get_fontsize() >= 9 for t in fig.findobj(Text) if t.get_text().strip())
    ax = fig.axes[0]
    assert "fitted model" in ax.get_title() and "(reflectance)" in ax.get_ylabel() and ax.get_legend()
