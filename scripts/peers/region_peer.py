"""Peers for `Benchmarks regions`: random 256² level-0 reads with tifffile (the tiles a region
needs, read and decoded through tifffile's own page decoder, no cache) and with OpenSlide
(`read_region`), single-threaded, on the same file and origins; and the decode floor: the tiles
each read covers, already in memory, decoded whole by imagecodecs (tifffile's decoder) and by the
system's TurboJPEG (the library SSMamba's reader links), so reader overhead = read − decode.
Prints one JSON object.

    python scripts/peers/region_peer.py FILE.tif ORIGINS.json
"""
import ctypes
import json
import sys
import time

import imagecodecs
import numpy as np
import tifffile

path, origins_path = sys.argv[1], sys.argv[2]
origins = json.load(open(origins_path))
result = {}

with tifffile.TiffFile(path) as tif:
    page = tif.pages[0]
    tile = page.tilewidth
    across = (page.imagewidth + tile - 1) // tile
    fh = tif.filehandle

    def covering(x, y, size=256):
        """(index, raw bytes, tile x, tile y) of every tile a size² read at (x, y) covers."""
        for row in range(y // tile, (y + size - 1) // tile + 1):
            for column in range(x // tile, (x + size - 1) // tile + 1):
                index = row * across + column
                fh.seek(page.dataoffsets[index])
                yield index, fh.read(page.databytecounts[index]), column * tile, row * tile

    def read_tifffile(x, y, size=256):
        out = np.full((size, size, 3), 255, np.uint8)
        for index, data, tx, ty in covering(x, y, size):
            segment = page.decode(data, index, jpegtables=page.jpegtables)[0][0]  # (depth, h, w, s)
            x0, y0 = max(x, tx), max(y, ty)
            x1, y1 = min(x + size, tx + tile), min(y + size, ty + tile)
            out[y0 - y:y1 - y, x0 - x:x1 - x] = segment[y0 - ty:y1 - ty, x0 - tx:x1 - tx, :3]
        return out

    read_tifffile(0, 0)
    start = time.perf_counter()
    for x, y in origins:
        read_tifffile(x, y)
    result["tifffile_reads_per_second"] = len(origins) / (time.perf_counter() - start)
    result["tifffile"] = tifffile.__version__

    # The decode floor: every tile a read covers, its JPEG stream (shared tables spliced in)
    # already in memory, decoded whole; reads per second if reading cost nothing else.
    def stream(data):
        return page.jpegtables[:-2] + data[2:] if page.jpegtables else data

    per_read = [[stream(data) for _, data, _, _ in covering(x, y)] for x, y in origins]

    start = time.perf_counter()
    for tiles in per_read:
        for data in tiles:
            imagecodecs.jpeg8_decode(data)
    result["imagecodecs_decode_only_reads_per_second"] = len(origins) / (time.perf_counter() - start)
    result["imagecodecs_libjpeg_turbo"] = imagecodecs.version(dict).get("libjpeg_turbo", "?")
    try:
        turbo = ctypes.CDLL("libturbojpeg.so.0")
        turbo.tjInitDecompress.restype = ctypes.c_void_p
        turbo.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p] + [ctypes.c_int] * 5
        handle = turbo.tjInitDecompress()
        pixels = np.empty((tile, tile, 3), np.uint8)
        start = time.perf_counter()
        for tiles in per_read:
            for data in tiles:
                if turbo.tjDecompress2(handle, data, len(data), pixels.ctypes.data, tile, tile * 3, tile, 0, 0) != 0:
                    raise RuntimeError("tjDecompress2 failed")
        result["system_turbojpeg_decode_only_reads_per_second"] = len(origins) / (time.perf_counter() - start)
    except (OSError, RuntimeError) as error:
        result["system_turbojpeg_error"] = f"{type(error).__name__}: {error}"

try:
    import openslide

    slide = openslide.OpenSlide(path)
    slide.set_cache(openslide.OpenSlideCache(0)) if hasattr(openslide, "OpenSlideCache") else None
    slide.read_region((0, 0), 0, (256, 256))
    start = time.perf_counter()
    for x, y in origins:
        slide.read_region((x, y), 0, (256, 256))
    result["openslide_reads_per_second"] = len(origins) / (time.perf_counter() - start)
    result["openslide"] = openslide.__library_version__
except Exception as error:  # noqa: BLE001 - reported, not fatal
    result["openslide_error"] = f"{type(error).__name__}: {error}"
print(json.dumps(result, sort_keys=True))
