"""Reference crops of the real sample slides, decoded by tifffile + imagecodecs (an independent
decoder), for Tests/SlidesTests. Run once after `make samples`; the output is committed:

    .venv-ref/bin/pip install tifffile==2026.3.3 imagecodecs==2026.3.6 safetensors numpy
    .venv-ref/bin/python scripts/reference/make_slide_fixtures.py
"""
import json
from pathlib import Path

import numpy as np
import tifffile
from safetensors.numpy import save_file

root = Path(__file__).resolve().parents[2]
samples = root / "data/samples"
# (sample, tiff page of the level, level index, x, y, width, height) in that level's pixels.
crops = [
    ("cmu_small_region.svs", 0, 0, 1000, 1000, 96, 96),     # inside one tile
    ("cmu_small_region.svs", 0, 0, 200, 450, 100, 80),      # across tile borders (240² tiles)
    ("cmu_small_region.svs", 0, 0, 2150, 2900, 70, 67),     # the bottom-right corner, edge tiles
    ("tcga-cr-7395-01a-01-ts1.svs", 0, 0, 240, 500, 96, 96),  # JPEG 2000, across tile borders (256²)
    ("tcga-cr-7395-01a-01-ts1.svs", 2, 1, 1000, 700, 80, 96),  # level 1
]
tensors, entries, levels = {}, [], {}
for i, (name, page, level, x, y, w, h) in enumerate(crops):
    key = (name, page)
    if key not in levels:
        levels[key] = tifffile.TiffFile(samples / name).pages[page].asarray()
    pixels = levels[key]
    tensors[f"crop.{i}"] = np.ascontiguousarray(pixels[y:y + h, x:x + w, :3]).astype(np.uint8)
    entries.append({"sample": name, "level": level, "x": x, "y": y, "width": w, "height": h})
means = {f"{name}#{page}": [float(v) for v in pixels[..., :3].reshape(-1, 3).mean(axis=0)] for (name, page), pixels in levels.items()}
out = root / "Tests/SlidesTests/Fixtures/reference_crops.safetensors"
save_file(tensors, str(out), metadata={"crops": json.dumps(entries), "level_means": json.dumps(means),
                                       "decoder": f"tifffile {tifffile.__version__}"})
print(f"wrote {out} ({out.stat().st_size} bytes)")

# Small synthetic pyramids written by tifffile, with known pixels: the same image as an IFD chain
# and as SubIFDs, plus JPEG (YCbCr) and JPEG 2000 tiles. Also the fuzzing corpus of the tests.
fixtures = root / "Tests/SlidesTests/Fixtures"
yy, xx = np.mgrid[0:384, 0:512]
base = np.stack([(xx * 255 // 511), (yy * 255 // 383), ((xx // 32 + yy // 32) % 2) * 200 + 30], axis=-1).astype(np.uint8)


def shrink(image):
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)


pyramid = [base, shrink(base), shrink(shrink(base))]
resolution = (20000, 20000)  # pixels per centimetre: 0.5 µm/px
with tifffile.TiffWriter(fixtures / "pyramid_subifd.tif") as tif:
    tif.write(pyramid[0], tile=(128, 128), compression="zlib", subifds=2, resolution=resolution, resolutionunit="CENTIMETER",
              photometric="rgb")
    for level in pyramid[1:]:
        tif.write(level, tile=(64, 64), compression="zlib", subfiletype=1, photometric="rgb")
with tifffile.TiffWriter(fixtures / "pyramid_chain.tif") as tif:
    tif.write(pyramid[0], tile=(128, 128), compression="lzw", resolution=resolution, resolutionunit="CENTIMETER", photometric="rgb")
    for level in pyramid[1:]:
        tif.write(level, tile=(64, 64), compression="lzw", subfiletype=1, photometric="rgb")
tifffile.imwrite(fixtures / "tiles_jpeg_ycbcr.tif", pyramid[0], tile=(128, 128), compression="jpeg", compressionargs={"level": 95},
                 photometric="ycbcr")
tifffile.imwrite(fixtures / "tiles_jpeg2000.tif", pyramid[1], tile=(64, 64), compression="jpeg2000", photometric="rgb")
# The JPEG file as an independent decoder sees it (tifffile stores the RGB input under a YCbCr tag,
# so its colours differ from `base`: what matters is that both decoders agree).
jpeg_decoded = tifffile.imread(fixtures / "tiles_jpeg_ycbcr.tif")[..., :3]
save_file({**{f"level.{i}": level for i, level in enumerate(pyramid)}, "jpeg_ycbcr.decoded": np.ascontiguousarray(jpeg_decoded)},
          str(fixtures / "pyramid_pixels.safetensors"))
for f in sorted(fixtures.glob("*.tif")):
    print(f"wrote {f} ({f.stat().st_size} bytes)")

# ROI images decoded by Pillow (libjpeg-turbo, libpng): crops and whole-image means.
from PIL import Image  # noqa: E402

roi = {}
roi_meta = {}
for name, box in [("hgsc_nest.jpg", (700, 300, 96, 80)), ("target_image.png", (100, 850, 90, 100))]:
    pixels = np.asarray(Image.open(samples / name).convert("RGB"))
    x, y, w, h = box
    roi[f"{name}.crop"] = np.ascontiguousarray(pixels[y:y + h, x:x + w])
    roi_meta[name] = {"x": x, "y": y, "width": w, "height": h, "image_width": pixels.shape[1], "image_height": pixels.shape[0],
                      "mean": [float(v) for v in pixels.reshape(-1, 3).mean(axis=0)]}
save_file(roi, str(fixtures / "roi_images.safetensors"), metadata={"images": json.dumps(roi_meta), "decoder": "Pillow"})
print("wrote roi_images.safetensors")
