"""Python peer for `Benchmarks pipeline`: the preprocessing a user would write with tifffile, numpy,
torchstain and lmdb, with a PyTorch DataLoader of 2 workers: the slide's level 0 → tissue mask
(saturation, Otsu, at 1/16 scale) → 224² tiles at level 0 with ≥ 50 % tissue → Macenko (fitted once
to the target) → raw uint8 records in LMDB. Also times the tissue mask alone. Prints one JSON object.

    python scripts/peers/pipeline_peer.py SLIDE TARGET.png CACHE_DIR
"""
import json
import shutil
import sys
import time

import lmdb
import numpy as np
import tifffile
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

slide_path, target_path, cache_dir = sys.argv[1], sys.argv[2], sys.argv[3]
SIZE, SCALE = 224, 16


def tissue_mask(level0):
    small = level0[::SCALE, ::SCALE].astype(np.float32)
    high, low = small.max(-1), small.min(-1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1), 0)
    histogram, edges = np.histogram(saturation, bins=256, range=(0, 1))
    weights = np.cumsum(histogram)
    means = np.cumsum(histogram * edges[:-1])
    total, total_mean = weights[-1], means[-1]
    between = (total_mean * weights / total - means) ** 2 / np.maximum(weights * (total - weights), 1)
    threshold = max(edges[np.argmax(between)], 0.07)
    return saturation > threshold


start = time.perf_counter()
level0 = tifffile.TiffFile(slide_path).pages[0].asarray()
mask = tissue_mask(level0)
mask_seconds = time.perf_counter() - start

positions = []
for y in range(0, level0.shape[0] - SIZE + 1, SIZE):
    for x in range(0, level0.shape[1] - SIZE + 1, SIZE):
        window = mask[y // SCALE:(y + SIZE) // SCALE, x // SCALE:(x + SIZE) // SCALE]
        if window.size and window.mean() >= 0.5:
            positions.append((x, y))

target = np.asarray(Image.open(target_path).convert("RGB"))


class Tiles(Dataset):
    def __init__(self):
        self.normalizer = NumpyMacenkoNormalizer()
        self.normalizer.fit(target.copy())

    def __len__(self):
        return len(positions)

    def __getitem__(self, index):
        x, y = positions[index]
        tile = np.ascontiguousarray(level0[y:y + SIZE, x:x + SIZE])
        try:
            tile = self.normalizer.normalize(tile, stains=False)[0]
        except Exception:  # background tiles: torchstain fails on them; keep the tile unchanged
            pass
        return index, torch.from_numpy(np.ascontiguousarray(tile))


shutil.rmtree(cache_dir, ignore_errors=True)
env = lmdb.open(cache_dir, map_size=1 << 32)
loader = DataLoader(Tiles(), batch_size=32, num_workers=2)
written = 0
with env.begin(write=True) as txn:
    for indices, tiles in loader:
        for index, tile in zip(indices.tolist(), tiles.numpy()):
            txn.put(index.to_bytes(8, "big"), tile.tobytes())
            written += 1
seconds = time.perf_counter() - start
env.close()
print(json.dumps({"tiles": written, "seconds": seconds, "tiles_per_second": written / seconds,
                  "tissue_mask_seconds": mask_seconds}, sort_keys=True))
