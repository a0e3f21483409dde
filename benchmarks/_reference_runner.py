"""Time the reference implementation (opensr-degradation 1.0.1) on the images benchmarks/degradation.py wrote.

Runs in the reference's own venv (``make refenv``: torch 2.14.1 + torchvision 0.29.1 and the packages the
reference imports). Prints one JSON object: seconds per image for ``pipe.forward`` (models preloaded through
params, which favours the reference) with the same four methods and real noise as our benchmark.
"""

import json
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import opensr_degradation  # noqa: E402
import torch  # noqa: E402
from opensr_degradation.naipd.main import naip_unet_model, naip_vae_model  # noqa: E402


def main() -> None:
    images_path, repeat = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(2)
    unet, vae = naip_unet_model("cpu"), naip_vae_model("cpu")
    params = {"reflectance_method": ["identity", "gamma_multivariate_normal", "unet_histogram_matching",
                                     "vae_histogram_matching"],
              "percentiles": [50], "seed": 42, "device": "cpu", "noise_method": "real_noise",
              "unet_reflectance_model": unet, "vae_reflectance_model": vae}
    pipe = opensr_degradation.pipe(sensor="naip_d", add_noise=True, params=params)
    out = {"torch": torch.__version__, "opensr_degradation": opensr_degradation.__version__}
    with np.load(images_path) as f:
        for name in f.files:
            x = torch.from_numpy(f[name])
            np.random.seed(0)  # noqa: NPY002 - the reference draws from the global RNG
            with torch.no_grad():
                pipe.forward(x)  # warm-up
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    lr, hr = pipe.forward(x)
                    times.append(time.perf_counter() - t0)
            out[name] = {"seconds": statistics.median(times), "runs": times, "lr_shape": list(lr.shape)}
            print(f"reference {name}: {out[name]['seconds']:.2f} s", file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
