"""Python peers for `Benchmarks stain`: torchstain 1.4.1 (numpy backend) Macenko and Reinhard, a plain
numpy implementation of each (what a user writes from the papers), and staintools' Vahadane (SPAMS)
when installed. Tiles: N×224×224×3 uint8 in a raw file; the target: a PNG. Prints one JSON object
of tiles per second.

    python scripts/peers/stain_peer.py tiles.u8 COUNT target.png
"""
import json
import sys
import time

import numpy as np
from PIL import Image
from torchstain.numpy.normalizers import NumpyMacenkoNormalizer, NumpyReinhardNormalizer

dump, count, target_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tiles = np.fromfile(dump, dtype=np.uint8).reshape(count, 224, 224, 3)
target = np.asarray(Image.open(target_path).convert("RGB"))


def rate(normalize):
    normalize(tiles[0].copy())
    start = time.perf_counter()
    for tile in tiles:
        normalize(tile.copy())
    return count / (time.perf_counter() - start)


def plain_reinhard_fit(image):
    lab = rgb_to_lab(image)
    return lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)


def rgb_to_lab(image):
    c = image.astype(np.float32) / 255
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = linear @ np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                             [0.019334, 0.119193, 0.950227]], np.float32).T / np.array([0.95047, 1.0, 1.08883], np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_rgb(lab):
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([lab[..., 1] / 500 + fy, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f > 0.2068966, f ** 3, (f - 16 / 116) / 7.787) * np.array([0.95047, 1.0, 1.08883])
    linear = xyz @ np.linalg.inv(np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                                           [0.019334, 0.119193, 0.950227]])).T
    srgb = np.where(linear > 0.0031308, 1.055 * np.clip(linear, 0, None) ** (1 / 2.4) - 0.055, linear * 12.92)
    return (np.clip(srgb, 0, 1) * 255).astype(np.uint8)


target_mean, target_std = plain_reinhard_fit(target)


def plain_reinhard(tile):
    lab = rgb_to_lab(tile)
    mean, std = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)
    return lab_to_rgb((lab - mean) / std * target_std + target_mean)


def plain_macenko_matrix(image, io=240, alpha=1, beta=0.15):
    od = -np.log((image.reshape(-1, 3).astype(np.float64) + 1) / io)
    tissue = od[(od >= beta).all(1)]
    _, vectors = np.linalg.eigh(np.cov(tissue.T))
    plane = tissue @ vectors[:, 1:3]
    angles = np.arctan2(plane[:, 1], plane[:, 0])
    low, high = np.percentile(angles, [alpha, 100 - alpha])
    v1 = vectors[:, 1:3] @ np.array([np.cos(low), np.sin(low)])
    v2 = vectors[:, 1:3] @ np.array([np.cos(high), np.sin(high)])
    matrix = np.stack([v1, v2] if v1[0] > v2[0] else [v2, v1], 1)
    concentrations = np.linalg.lstsq(matrix, od.T, rcond=None)[0]
    return matrix, concentrations, np.percentile(concentrations, 99, axis=1)


target_matrix, _, target_max = plain_macenko_matrix(target)


def plain_macenko(tile, io=240):
    _, concentrations, maximum = plain_macenko_matrix(tile)
    scaled = concentrations * (target_max / maximum)[:, None]
    return np.clip(io * np.exp(-target_matrix @ scaled), 0, 255).T.reshape(tile.shape).astype(np.uint8)


results = {"tiles": count}
macenko = NumpyMacenkoNormalizer()
macenko.fit(target.copy())
results["torchstain_macenko"] = rate(lambda t: macenko.normalize(t, stains=False))
reinhard = NumpyReinhardNormalizer()
reinhard.fit(target.copy())
results["torchstain_reinhard"] = rate(reinhard.normalize)
results["numpy_macenko"] = rate(plain_macenko)
results["numpy_reinhard"] = rate(plain_reinhard)
try:
    import staintools
    vahadane = staintools.StainNormalizer(method="vahadane")
    vahadane.fit(target.copy())
    subset = tiles[: max(4, count // 8)]
    start = time.perf_counter()
    for tile in subset:
        vahadane.transform(tile.copy())
    results["staintools_vahadane"] = len(subset) / (time.perf_counter() - start)
except ImportError:
    results["staintools_vahadane"] = None
print(json.dumps(results, sort_keys=True))
