"""PyTorch peer for `Benchmarks model-suite`: the reference model (scripts/reference/ssmamba_reference.py)
on the CPU, the same configuration and batch as the Swift case, in eager mode or under
torch.compile. Prints one JSON object with the same keys as the Swift case.

The scan comes in two forms with the same math (checked against each other at start-up):
  reference    the reference's loop, each step discretised on the fly (exp(Δ·A), Δ·B·u, ⟨h, C⟩)
  precomputed  decays exp(Δ·A) and inputs Δ·B·u for all steps in two batched ops, the loop only
               for h ← a·h + b, and y = ⟨h, C⟩ for all steps in one einsum (the form of mamba_ssm's
               selective_scan_ref)
Which is faster depends on the shapes (on ssmamba_micro the loop is, 8.4 vs 4.1 img/s training
at batch 8 on one thread); `Benchmarks model-suite` runs both and compiles the faster.
With --compile the model is wrapped in torch.compile (inductor); the first step, which compiles,
is timed apart as compile_seconds and excluded from the rate.

    python scripts/peers/model_peer.py --config '<ModelConfiguration JSON>' --batch 8 --mode train --steps 3 [--scan precomputed] [--compile]
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
import ssmamba_reference  # noqa: E402
from ssmamba_reference import Classifier  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--config", required=True)
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--mode", choices=["infer", "train"], default="infer")
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--memory-limit-gb", type=float, default=16)
parser.add_argument("--scan", choices=["reference", "precomputed"], default="reference")
parser.add_argument("--compile", action="store_true")
args = parser.parse_args()


def precomputed_scan(u, delta, A, B, C, D):
    """The reference's recurrence with everything but h ← a·h + b batched over the steps."""
    decays = torch.exp(delta.unsqueeze(-1) * A)                          # (B, L, E, N)
    inputs = (delta * u).unsqueeze(-1) * B.unsqueeze(2)                  # (B, L, E, N)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    states = []
    for t in range(u.shape[1]):
        h = decays[:, t] * h + inputs[:, t]
        states.append(h)
    return torch.einsum("blen,bln->ble", torch.stack(states, dim=1), C) + D * u


def check_scans_agree():
    generator = torch.Generator().manual_seed(1)
    u, delta = torch.randn(2, 9, 5, generator=generator), torch.rand(2, 9, 5, generator=generator)
    A, B, C, D = -torch.rand(5, 3, generator=generator), torch.randn(2, 9, 3, generator=generator), torch.randn(2, 9, 3, generator=generator), torch.randn(5, generator=generator)
    reference = ssmamba_reference.selective_scan(u, delta, A, B, C, D)
    assert torch.allclose(precomputed_scan(u, delta, A, B, C, D), reference, atol=1e-5), "the precomputed scan differs from the reference"


check_scans_agree()
if args.scan == "precomputed":
    ssmamba_reference.selective_scan = precomputed_scan

# A cap, so a run that needs more than the machine has fails cleanly instead of meeting the OOM killer.
limit = int(args.memory_limit_gb * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
torch.set_num_threads(args.threads)
torch.manual_seed(0)
config = json.loads(args.config)
model = Classifier(config)
forward = torch.compile(model) if args.compile else model
images = torch.randn(args.batch, config["channels"], config["imageSize"], config["imageSize"])
labels = torch.arange(args.batch) % config["classes"]
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)


def step():
    if args.mode == "train":
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(images), labels, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    else:
        model.eval()
        with torch.inference_mode():
            forward(images)


result = {"implementation": "pytorch-compile" if args.compile else "pytorch-eager", "scan": args.scan, "model": config["name"],
          "batch": args.batch, "mode": args.mode, "steps": args.steps, "torch": torch.__version__, "threads": args.threads}
try:
    start = time.perf_counter()
    step()  # warm-up (with --compile: compilation)
    if args.compile:
        result["compile_seconds"] = time.perf_counter() - start
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
