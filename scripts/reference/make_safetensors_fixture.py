"""Write Tests/TensorsTests/Fixtures/pytorch_dtypes.safetensors with the Python safetensors package.

Every value is a simple formula of its index (restated in SafeTensorsTests.swift), so the Swift test
knows what it must read without Python. Run once; the output is committed:

    python3 -m venv .venv-ref && .venv-ref/bin/pip install "torch==2.13.0+cpu" safetensors
    .venv-ref/bin/python scripts/reference/make_safetensors_fixture.py
"""
from pathlib import Path

import torch
from safetensors.torch import save_file

out = Path(__file__).resolve().parents[2] / "Tests/TensorsTests/Fixtures/pytorch_dtypes.safetensors"
ramp = torch.arange(24, dtype=torch.float64)
tensors = {
    # f32[i] = (i - 11.5) / 8, shape (2, 3, 4)
    "weights.f32": ((ramp - 11.5) / 8).to(torch.float32).reshape(2, 3, 4),
    # f64[i] = i / 3, shape (24,)
    "weights.f64": ramp / 3,
    # f16[i] = (i - 5) * 0.25, shape (3, 4): exact in half precision
    "weights.f16": ((ramp[:12] - 5) * 0.25).to(torch.float16).reshape(3, 4),
    # bf16[i] = (i + 1) * 1.5, shape (8,): exact in bfloat16
    "weights.bf16": ((ramp[:8] + 1) * 1.5).to(torch.bfloat16),
    # u8[i] = (i * 37) mod 256, shape (2, 2, 6)
    "pixels.u8": ((torch.arange(24) * 37) % 256).to(torch.uint8).reshape(2, 2, 6),
    # i64 = [-3, 0, 2^40 + 7]
    "steps.i64": torch.tensor([-3, 0, 2**40 + 7], dtype=torch.int64),
}
save_file(tensors, str(out), metadata={"format": "pt", "producer": "make_safetensors_fixture.py"})
print(f"wrote {out} ({out.stat().st_size} bytes)")
