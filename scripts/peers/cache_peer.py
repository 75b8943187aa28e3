"""Python peer for `Benchmarks cache`: the pipeline a user would write with lmdb + numpy. Raw uint8
224×224×3 tiles (interleaved, as decoders give them) are written to LMDB, then random batches of 64
are read, converted to float32, normalised (ImageNet mean/std) and transposed to NCHW. Prints one
JSON object.

    python scripts/peers/cache_peer.py tiles.u8 COUNT BATCHES
"""
import json
import os
import shutil
import sys
import tempfile
import time

import lmdb
import numpy as np

dump, count, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tiles = np.fromfile(dump, dtype=np.uint8).reshape(count, 224, 224, 3)
directory = tempfile.mkdtemp(prefix="cache-peer-")
env = lmdb.open(directory, map_size=1 << 32)
start = time.perf_counter()
for chunk in range(0, count, 64):
    with env.begin(write=True) as txn:
        for i in range(chunk, min(chunk + 64, count)):
            txn.put(i.to_bytes(8, "big"), tiles[i].tobytes())
write_rate = count / (time.perf_counter() - start)
mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
rng = np.random.default_rng(3)
plan = [rng.integers(0, count, 64) for _ in range(batches)]


def read(keys):
    with env.begin() as txn:
        raw = np.stack([np.frombuffer(txn.get(int(k).to_bytes(8, "big")), np.uint8) for k in keys]).reshape(-1, 224, 224, 3)
    return np.ascontiguousarray((raw.transpose(0, 3, 1, 2).astype(np.float32) / 255 - mean) / std)


read(plan[0])
start = time.perf_counter()
for keys in plan:
    read(keys)
read_rate = batches * 64 / (time.perf_counter() - start)
env.close()
shutil.rmtree(directory)
print(json.dumps({"write_tiles_per_second": write_rate, "read_tiles_per_second": read_rate, "lmdb": lmdb.__version__,
                  "numpy": np.__version__}, sort_keys=True))
