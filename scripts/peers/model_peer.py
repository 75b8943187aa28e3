"""PyTorch peer for `Benchmarks model-suite`: the reference model (scripts/reference/ssmamba_reference.py),
eager mode on the CPU, the same configuration and batch as the Swift case. Prints one JSON object
with the same keys as the Swift case.

    python scripts/peers/model_peer.py --config '<ModelConfiguration JSON>' --batch 8 --mode train --steps 3
"""
import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reference"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from ssmamba_reference import Classifier  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--config", required=True)
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--mode", choices=["infer", "train"], default="infer")
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--memory-limit-gb", type=float, default=16)
args = parser.parse_args()

# A cap, so a run that needs more than the machine has fails cleanly instead of meeting the OOM killer.
limit = int(args.memory_limit_gb * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
torch.set_num_threads(args.threads)
torch.manual_seed(0)
config = json.loads(args.config)
model = Classifier(config)
images = torch.randn(args.batch, config["channels"], config["imageSize"], config["imageSize"])
labels = torch.arange(args.batch) % config["classes"]
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)


def step():
    if args.mode == "train":
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    else:
        model.eval()
        with torch.inference_mode():
            model(images)


result = {"implementation": "pytorch-eager", "model": config["name"], "batch": args.batch, "mode": args.mode,
          "steps": args.steps, "torch": torch.__version__, "threads": args.threads}
try:
    step()  # warm-up
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    result.update(images_per_second=args.batch / median, spread=(max(times) - min(times)) / median)
except (RuntimeError, MemoryError) as error:
    result["error"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result, sort_keys=True))
