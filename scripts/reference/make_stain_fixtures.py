"""Expected stain-normalization outputs for Tests/TilingTests, computed by established Python
implementations on real H&E images from the samples: torchstain 1.4.1 (numpy backend) for Reinhard
and Macenko, staintools 2.1.2 with SPAMS (spams-bin) dictionary learning for Vahadane.
Run once after `make samples`; the output is committed:

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install numpy pillow torchstain==1.4.1 staintools==2.1.2 spams-bin opencv-python-headless
    .venv-ref/bin/python scripts/reference/make_stain_fixtures.py

The crops are stored as PNG so the Swift tests start from the very same pixels (JPEG decoders differ).
"""
import json
from pathlib import Path

import numpy as np
import staintools
from PIL import Image
from torchstain.numpy.normalizers import NumpyMacenkoNormalizer, NumpyReinhardNormalizer

root = Path(__file__).resolve().parents[2]
samples = root / "data/samples"
out = root / "Tests/TilingTests/Fixtures/stain"
out.mkdir(parents=True, exist_ok=True)
SIZE = 160


def crop(name, x, y):
    image = np.asarray(Image.open(samples / name).convert("RGB"))
    return np.ascontiguousarray(image[y:y + SIZE, x:x + SIZE])


def save(name, pixels):
    Image.fromarray(pixels).save(out / name, optimize=True)


target = crop("target_image.png", 420, 380)
sources = {"nest": crop("hgsc_nest.jpg", 700, 650), "stroma": crop("hgsc_stromal_he.jpg", 600, 600)}
save("target.png", target)
for key, pixels in sources.items():
    save(f"{key}.png", pixels)

reinhard = NumpyReinhardNormalizer()
reinhard.fit(target.copy())
macenko = NumpyMacenkoNormalizer()
macenko.fit(target.copy())
vahadane = staintools.StainNormalizer(method="vahadane")
vahadane.fit(target.copy())

fitted = {
    "reinhard": {"means": [float(v) for v in reinhard.target_means], "stds": [float(v) for v in reinhard.target_stds]},
    "macenko": {"stain_matrix": macenko.HERef.T.tolist(), "max_concentrations": macenko.maxCRef.tolist()},
    "vahadane": {"stain_matrix": vahadane.stain_matrix_target.tolist(),
                 "max_concentrations": vahadane.maxC_target.reshape(-1).tolist()},
}
for key, pixels in sources.items():
    save(f"{key}.reinhard.png", reinhard.normalize(pixels.copy()))
    save(f"{key}.macenko.png", macenko.normalize(pixels.copy(), stains=False)[0])
    save(f"{key}.vahadane.png", vahadane.transform(pixels.copy()))
    fitted[f"{key}.vahadane_matrix"] = staintools.VahadaneStainExtractor.get_stain_matrix(pixels.copy()).tolist()
(out / "fitted.json").write_text(json.dumps(fitted, indent=2) + "\n")
print("wrote", sorted(p.name for p in out.iterdir()))
