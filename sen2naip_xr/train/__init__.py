"""Train the networks of the degradation model from cross-sensor pairs (PyTorch; CUDA when present).

* :func:`train_vae`: the published ``SimpleVAE`` architecture (4x120 band histograms -> latent 20 -> 4x120),
  trained to map 120-bin histograms of NAIP at 10 m to those of Sentinel-2 (MSE on max-normalised
  histograms + beta x KL). Saved as a state dict that the numpy VAE reads (``harmonize(..., checkpoint=)``).
* :func:`train_unet`: NAIP degraded to 10 m -> S2 reflectance, L1 loss. ``arch="published"`` fine-tunes the
  published U-Net (EfficientNet-B1 encoder) from its TorchScript weights (batch norm stays as traced, in
  inference mode); ``arch="small"`` trains a documented smaller U-Net from scratch (3 levels, 16-32-64
  channels, ~0.1 M parameters) for quick CPU runs. Saved as TorchScript, which the inference path loads
  (``harmonize(..., method="unet", checkpoint=)``).

Both are deterministic for a seed on CPU (``torch.manual_seed``, a seeded shuffling order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from sen2naip_xr._validate import as_image
from sen2naip_xr.config import SEN2NAIP_SIGMA
from sen2naip_xr.errors import InputError
from sen2naip_xr.harmonize import kernels as _hnp
from sen2naip_xr.harmonize import require_torch, resolve_device
from sen2naip_xr.ops import kernels as _ops

__all__ = ["train_vae", "train_unet", "TrainResult"]


@dataclass(frozen=True)
class TrainResult:
    """A trained checkpoint and its loss history."""

    checkpoint: Path
    """The saved file: a state dict (VAE) or TorchScript (U-Net); pass it as ``checkpoint=`` to harmonize."""
    losses: list[float] = field(default_factory=list)
    """Mean training loss per epoch."""
    device: str = "cpu"
    """Where it trained."""


def _stacks(naip: xr.DataArray, s2: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(as_image(naip, arg="naip", bands=4).values, np.float32)
    b = np.asarray(as_image(s2, arg="s2", bands=4).values, np.float32)
    a, b = a.reshape((-1,) + a.shape[-3:]), b.reshape((-1,) + b.shape[-3:])
    if a.shape[0] != b.shape[0] or a.shape[-1] != 4 * b.shape[-1] or a.shape[-2] != 4 * b.shape[-2]:
        raise InputError(f"naip {a.shape} and s2 {b.shape} are not pairs with naip at 4x the s2 grid")
    if a.shape[0] < 2:
        raise InputError(f"{a.shape[0]} pair(s) given; training needs at least 2")
    return a, b


class _Progress:
    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        from sen2naip_xr._progress import progress

        self.bar = progress(total=total, desc=desc, enabled=enabled)

    def step(self, loss: float) -> None:
        self.bar.set_postfix(loss=f"{loss:.5f}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _epochs(torch: Any, step: Callable[[Any], Any], opt: Any, *, n: int, epochs: int, batch_size: int,
            gen: Any, device: str, desc: str, progress: bool) -> list[float]:
    """Mini-batch training: each epoch a seeded permutation of the ``n`` samples, ``step(indices)`` returns
    the batch loss; returns the mean loss per epoch."""
    losses, bar = [], _Progress(epochs, desc, progress)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size].to(device)
            loss = step(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
        bar.step(losses[-1])
    bar.close()
    return losses


def _vae_module(torch: Any) -> Any:
    nn = torch.nn

    class SimpleVAE(nn.Module):  # type: ignore[name-defined]
        """The published architecture (state-dict keys ``encoder.1``, ``encoder.3``, ``decoder.0``, ``decoder.2``)."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(480, 512), nn.ReLU(), nn.Linear(512, 40))
            self.decoder = nn.Sequential(nn.Linear(20, 512), nn.ReLU(), nn.Linear(512, 480),
                                         nn.Unflatten(1, (4, 120)), nn.Sigmoid())

        def forward(self, x: Any, eps: Any) -> tuple[Any, Any, Any]:
            mu, logvar = self.encoder(x).chunk(2, dim=1)
            z = mu + eps * torch.exp(0.5 * logvar)
            return self.decoder(z), mu, logvar

    return SimpleVAE()


def train_vae(naip: xr.DataArray, s2: xr.DataArray, out: str | Path, *, epochs: int = 200, lr: float = 1e-3,
              beta: float = 1e-3, batch_size: int = 32, seed: int = 0, device: str = "auto",
              init: Literal["published", "scratch"] = "published", progress: bool = True) -> TrainResult:
    """Train the histogram VAE on pairs (NAIP at 2.5 m, S2 at 10 m); write a state dict to ``out``.

    ``init="published"`` starts from the published weights (fine-tuning), ``"scratch"`` from a seeded init.
    """
    torch = require_torch()
    dev = resolve_device(device)
    a, b = _stacks(naip, s2)
    x_hist = _hnp.histc(_ops.blur_downsample(a, SEN2NAIP_SIGMA))
    y_hist = _hnp.histc(np.nan_to_num(b, nan=-1.0))
    x = x_hist / np.maximum(x_hist.sum(-1, keepdims=True), 1)
    y = y_hist / np.maximum(y_hist.max(-1, keepdims=True), 1)
    torch.manual_seed(seed)
    model = _vae_module(torch)
    if init == "published":
        from sen2naip_xr.weights import vae_state

        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in vae_state().items()})
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x.astype(np.float32)).to(dev), torch.from_numpy(y.astype(np.float32)).to(dev)
    gen = torch.Generator().manual_seed(seed)

    def step(idx: Any) -> Any:
        eps = torch.randn((len(idx), 20), generator=gen).to(dev)
        dec, mu, logvar = model(xt[idx], eps)
        kl = -0.5 * torch.mean(1 + logvar - mu**2 - logvar.exp())
        return torch.nn.functional.mse_loss(dec, yt[idx]) + beta * kl

    losses = _epochs(torch, step, opt, n=len(xt), epochs=epochs, batch_size=batch_size, gen=gen, device=dev,
                     desc="train vae", progress=progress)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out)
    return TrainResult(checkpoint=out, losses=losses, device=dev)


def _small_unet(torch: Any) -> Any:
    nn = torch.nn

    def block(cin: int, cout: int) -> Any:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))

    class SmallUNet(nn.Module):  # type: ignore[name-defined]
        """3-level U-Net, 16-32-64 channels, nearest x2 upsampling, linear 1x1 head (unbounded like the published one)."""

        def __init__(self) -> None:
            super().__init__()
            self.e1, self.e2, self.e3 = block(4, 16), block(16, 32), block(32, 64)
            self.d2, self.d1 = block(64 + 32, 32), block(32 + 16, 16)
            self.head = nn.Conv2d(16, 4, 1)
            self.pool = nn.MaxPool2d(2)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")

        def forward(self, x):  # unannotated: TorchScript types it as Tensor
            e1 = self.e1(x)
            e2 = self.e2(self.pool(e1))
            e3 = self.e3(self.pool(e2))
            d2 = self.d2(torch.cat([self.up(e3), e2], 1))
            d1 = self.d1(torch.cat([self.up(d2), e1], 1))
            return self.head(d1)

    return SmallUNet()


def train_unet(naip: xr.DataArray, s2: xr.DataArray, out: str | Path, *,
               arch: Literal["published", "small"] = "small", epochs: int = 20, lr: float = 1e-3,
               batch_size: int = 8, seed: int = 0, device: str = "auto", progress: bool = True,
               loss: Callable | None = None) -> TrainResult:
    """Train the U-Net harmonizer: NAIP degraded to 10 m -> S2 (L1). Writes TorchScript to ``out``.

    Inputs are padded to a multiple of 32 (zeros at the bottom/right, as at inference) and the loss is taken
    over the valid S2 pixels of the unpadded area.
    """
    torch = require_torch()
    dev = resolve_device(device)
    a, b = _stacks(naip, s2)
    x = _ops.blur_downsample(a, SEN2NAIP_SIGMA)
    h, w = x.shape[-2:]
    ph, pw = -h % 32, -w % 32
    torch.manual_seed(seed)
    if arch == "published":
        import warnings

        from sen2naip_xr.weights import weight_path

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(weight_path("unet")), map_location=dev)
    elif arch == "small":
        model = _small_unet(torch).to(dev)
    else:
        raise InputError(f"arch={arch!r} is not supported; use 'published' (fine-tune) or 'small'")
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt = torch.nn.functional.pad(torch.from_numpy(x), (0, pw, 0, ph)).to(dev)
    yt = torch.from_numpy(np.nan_to_num(b, nan=0.0)).to(dev)
    mt = torch.from_numpy(np.isfinite(b).astype(np.float32)).to(dev)
    crit = loss or (lambda p, t, m: (torch.abs(p - t) * m).sum() / m.sum().clamp(min=1))
    gen = torch.Generator().manual_seed(seed)

    def step(idx: Any) -> Any:
        return crit(model(xt[idx])[:, :, :h, :w], yt[idx], mt[idx])

    losses = _epochs(torch, step, opt, n=len(xt), epochs=epochs, batch_size=batch_size, gen=gen, device=dev,
                     desc=f"train unet ({arch})", progress=progress)
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if arch == "published":
        model.save(str(out))
    else:
        import warnings

        with warnings.catch_warnings():  # TorchScript is the published format; torch >= 2.9 deprecates it
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.script(model.cpu()).save(str(out))
    return TrainResult(checkpoint=out, losses=losses, device=dev)
