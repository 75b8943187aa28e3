"""PyTorch peer for `Benchmarks stream`: what a user would write to train from an LMDB of tiles.
The raw 64×64×3 uint8 tiles are stored in LMDB (py-lmdb), a `Dataset` reads and augments one tile
(random resized crop 0.6–1 of the area, one of the eight flips/rotations, brightness ±10 %,
normalisation) and a `DataLoader` with two workers batches them for the reference model
(scripts/reference/ssmamba_reference.py), trained with AdamW. The same steps are also timed on
batches made beforehand and held in memory. Prints one JSON object.

    python scripts/peers/stream_peer.py --tiles tiles.u8 --count N --config '<JSON>' --batch 32 --steps 40 --rounds 3
"""
import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reference"))
import lmdb  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from ssmamba_reference import Classifier  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--tiles", required=True)
parser.add_argument("--count", type=int, required=True)
parser.add_argument("--config", required=True)
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--steps", type=int, default=40)
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class LMDBTiles(torch.utils.data.Dataset):
    """One augmented tile per item, read from LMDB (the environment opened once per worker)."""

    def __init__(self, path, count, size):
        self.path, self.count, self.size, self.env = path, count, size, None

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        if self.env is None:
            self.env = lmdb.open(self.path, readonly=True, lock=False, readahead=False)
        with self.env.begin() as txn:
            raw = np.frombuffer(txn.get(index.to_bytes(8, "big")), np.uint8).reshape(64, 64, 3)
        image = torch.from_numpy(raw.copy()).permute(2, 0, 1).float() / 255
        area = 64 * 64 * np.random.uniform(0.6, 1.0)
        ratio = np.exp(np.random.uniform(np.log(3 / 4), np.log(4 / 3)))
        w = int(min(64, round((area * ratio) ** 0.5)))
        h = int(min(64, round((area / ratio) ** 0.5)))
        x, y = np.random.randint(0, 64 - w + 1), np.random.randint(0, 64 - h + 1)
        image = F.interpolate(image[None, :, y:y + h, x:x + w], size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        k = np.random.randint(8)
        if k & 4:
            image = image.transpose(1, 2)
        if k & 1:
            image = image.flip(2)
        if k & 2:
            image = image.flip(1)
        image = image * np.random.uniform(0.9, 1.1)
        return (image - MEAN) / STD, index % 3


torch.set_num_threads(args.threads)
torch.manual_seed(0)
config = json.loads(args.config)
model = Classifier(config)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
model.train()


def step(images, labels):
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


directory = tempfile.mkdtemp(prefix="stream-peer-")
try:
    tiles = np.fromfile(args.tiles, dtype=np.uint8).reshape(args.count, 64, 64, 3)
    env = lmdb.open(directory, map_size=1 << 32)
    with env.begin(write=True) as txn:
        for i in range(args.count):
            txn.put(i.to_bytes(8, "big"), tiles[i].tobytes())
    env.close()
    dataset = LMDBTiles(directory, args.count, config["imageSize"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=2, persistent_workers=True,
                                         prefetch_factor=2, drop_last=True)
    batches = iter(loader)

    def next_batch():
        """The next batch, starting a new epoch (a new shuffle) when one ends, as a training loop does."""
        global batches
        try:
            return next(batches)
        except StopIteration:
            batches = iter(loader)
            return next(batches)

    for _ in range(3):  # warm-up: workers started, kernels and allocator warm
        step(*next_batch())
    in_memory, streamed = [], []
    for _ in range(args.rounds):
        held = [next_batch() for _ in range(args.steps)]
        start = time.perf_counter()
        for images, labels in held:
            step(images, labels)
        in_memory.append(args.steps * args.batch / (time.perf_counter() - start))
        start = time.perf_counter()
        for _ in range(args.steps):
            step(*next_batch())
        streamed.append(args.steps * args.batch / (time.perf_counter() - start))
    print(json.dumps({"in_memory_images_per_second": statistics.median(in_memory),
                      "dataloader_images_per_second": statistics.median(streamed),
                      "torch": torch.__version__, "lmdb": lmdb.__version__, "threads": args.threads, "workers": 2,
                      "steps": args.steps, "rounds": args.rounds}, sort_keys=True))
finally:
    shutil.rmtree(directory, ignore_errors=True)
