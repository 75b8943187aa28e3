"""Small .npy/.npz files written by NumPy itself, for the reader's tests (Tests/SlidesTests/Fixtures).

    .venv-ref/bin/python scripts/reference/make_numpy_fixtures.py
"""
from pathlib import Path

import numpy as np

out = Path(__file__).resolve().parents[2] / "Tests/SlidesTests/Fixtures"
array = (np.arange(5 * 7, dtype=np.int32).reshape(5, 7) * 37) % 1000 - 100  # negative values too
np.save(out / "numpy_int32.npy", array)
np.save(out / "numpy_uint8.npy", (array % 256).astype(np.uint8))
np.savez_compressed(out / "numpy_masks.npz", nuc_raster=array, other=array.T.copy())
np.savez(out / "numpy_stored.npz", nuc_raster=array.astype(np.int64))
print("wrote", sorted(p.name for p in out.glob("numpy_*")))
