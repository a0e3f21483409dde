"""QA kernels (phase correlation, spectral angle) and the diversity filter on their own."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import sen2naip_xr as s2n
from sen2naip_xr.pipeline import (
    ClipEmbedder,
    ThumbnailEmbedder,
    misalignment,
    phase_shift,
    select_diverse,
    spectral_angle,
)
from sen2naip_xr.pipeline._qa import to_10m
from sen2naip_xr.scenes import make_scene


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.25, -0.4), (-0.6, 0.15), (1.5, 0.0), (-2.0, 3.0)])
def test_phase_correlation_recovers_sub_pixel_shifts_of_blurred_scenes(shift):
    hr = make_scene(512, 7)
    moved = np.stack([ndimage.shift(b, (4 * shift[0], 4 * shift[1]), order=3, mode="nearest") for b in hr])
    qa1, (dy, dx) = misalignment(to_10m(hr), to_10m(moved))
    assert abs(dy - shift[0]) <= 0.06 and abs(dx - shift[1]) <= 0.06
    assert qa1 == pytest.approx(np.hypot(dy, dx))


def test_phase_shift_ignores_nan_and_spectral_angle_known_values():
    a = make_scene(128, 1)
    b = a.copy()
    b[:, :5, :5] = np.nan
    assert phase_shift(b[0], a[0]) == (0.0, 0.0)
    assert spectral_angle(a, a) == pytest.approx(0.0, abs=1e-5)
    assert spectral_angle(a, 3 * a) == pytest.approx(0.0, abs=1e-5)  # angles ignore brightness
    x = np.zeros((4, 2, 2))
    y = np.zeros((4, 2, 2))
    x[0], y[1] = 1, 1
    assert spectral_angle(x, y) == pytest.approx(90.0)


def test_diversity_keeps_one_image_per_cluster_deterministically():
    emb = ThumbnailEmbedder()(np.stack([make_scene(64, s) for s in range(10)]))
    assert emb.shape == (10, 8 * 8 * 4 + 12 + 2 + 4)
    keep = select_diverse(emb, keep_fraction=0.5, seed=0)
    assert keep.sum() == 5  # ceil(0.5 x 10) clusters, exactly one image kept in each
    np.testing.assert_array_equal(keep, select_diverse(emb, keep_fraction=0.5, seed=0))
    assert select_diverse(emb, keep_fraction=1.0).all()
    twins = np.concatenate([emb[:3], emb[:3]])  # identical pairs: never both kept with 3 clusters
    k = select_diverse(twins, keep_fraction=0.5)
    assert not (k[:3] & k[3:]).any()


def test_clip_needs_open_clip_and_says_how_to_install_it(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_open_clip(name, *a, **kw):
        if name == "open_clip":
            raise ImportError("No module named 'open_clip'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_open_clip)
    with pytest.raises(s2n.MissingDependencyError, match="pip install open-clip-torch"):
        ClipEmbedder(weights="/nowhere/clip.pt")(np.zeros((1, 4, 32, 32), np.float32))


def test_diversity_keeps_exactly_one_image_of_each_known_cluster():
    """Five well-separated groups of two near-identical embeddings, five clusters: one image of each group."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 20)) * 10
    emb = np.repeat(centres, 2, axis=0) + rng.normal(size=(10, 20)) * 1e-3
    order = rng.permutation(10)  # groups interleaved, so "the first k images" is not the answer
    keep = select_diverse(emb[order], keep_fraction=0.5, seed=0)
    kept_groups = np.sort(order[keep] // 2)
    np.testing.assert_array_equal(kept_groups, np.arange(5))
    # with 2 clusters of 10 images (keep_fraction 0.2) exactly 2 are kept
    assert select_diverse(emb, keep_fraction=0.2, seed=1).sum() == 2


def test_clip_without_torch_gives_the_install_hint_first(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_torch(name, *a, **kw):
        if name.split(".")[0] in ("torch", "open_clip"):
            raise ImportError(f"No module named {name!r}", name=name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(s2n.MissingDependencyError, match="pip install open-clip-torch"):
        ClipEmbedder(weights="/nowhere/other-clip.pt")(np.zeros((1, 4, 32, 32), np.float32))
