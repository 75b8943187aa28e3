"""Checks pyramids written by SSMamba with tifffile and OpenSlide (development only):

    SSMAMBA_TEST_OUTPUT=/tmp/pyramids swift test -c release --disable-swift-testing --filter PyramidWriterTests
    .venv-ref/bin/pip install tifffile==2026.3.3 imagecodecs==2026.3.6 openslide-python==1.4.7 openslide-bin==4.0.1.2
    .venv-ref/bin/python scripts/reference/check_written_pyramids.py /tmp/pyramids
"""
import sys
from pathlib import Path

import numpy as np
import tifffile

try:
    import openslide
except ImportError:
    openslide = None

for path in sorted(Path(sys.argv[1]).glob("*.tif")):
    with tifffile.TiffFile(path) as tif:
        shapes = [p.shape for p in tif.series[0].levels]
        base = tif.pages[0].asarray()
        print(f"{path.name}: tifffile levels {shapes}, level 0 mean {base.reshape(-1, 3).mean(axis=0).round(1)}")
    if openslide is not None:
        slide = openslide.OpenSlide(str(path))
        region = np.asarray(slide.read_region((0, 0), slide.level_count - 1, slide.level_dimensions[-1]))[..., :3]
        print(f"  openslide: {slide.level_count} levels {slide.level_dimensions}, mpp-x {slide.properties.get('openslide.mpp-x')},"
              f" last level mean {region.reshape(-1, 3).mean(axis=0).round(1)}")
