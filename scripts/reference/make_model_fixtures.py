"""Parity fixtures for the Swift engine: a tiny SSMamba in float64 with PyTorch autograd.

Writes Tests/SSMambaTests/Fixtures/parity_classifier.safetensors, parity_encoder_masked.safetensors,
parity_variant.safetensors (learned softmax merge, causal local convolutions),
parity_hierarchical.safetensors (R1: convolutional stem and levels, then SSMamba levels) and
parity_per_direction.safetensors (a local path per scan direction, along its visiting order) and
parity_encoder_mask_token.safetensors (the encoder on every cell, hidden patches replaced by a mask token):
weights (`param/NAME`), inputs, outputs, the loss and every parameter's gradient (`grad/NAME`),
with the configuration as JSON in the metadata. Run once; the outputs are committed. Names given
on the command line write only those files (every part is still computed, so the seeds match):

    .venv-ref/bin/python scripts/reference/make_model_fixtures.py [parity_per_direction.safetensors ...]
"""
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ssmamba_reference import Classifier

torch.manual_seed(2026)
torch.set_default_dtype(torch.float64)
out_dir = Path(__file__).resolve().parents[2] / "Tests/SSMambaTests/Fixtures"

config = {
    "name": "parity_tiny", "imageSize": 16, "patchSize": 4, "channels": 3, "dim": 8, "depth": 2,
    "stateSize": 16, "expand": 2, "directions": ["h", "h_flip", "v", "v_flip", "w2", "w2_flip"],
    "localKernels": [3, 5], "merge": "mean", "attentionBlocks": 1, "heads": 2, "mlpRatio": 2,
    "useLPR": True, "dropPathRate": 0.0, "headDropout": 0.0, "classes": 3, "scanMemory": "recompute",
}
smoothing = 0.1


def randomize(model):
    """Move every weight to O(1) values (the initial ones make many gradients tiny), keeping the scan
    parameters in their working range: A = −exp(A_log) ≈ −(1…16), Δ = softplus(bias + …) ≈ 0.05…0.7."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.arange(1, p.shape[1] + 1)).repeat(p.shape[0], 1) + 0.1 * torch.randn_like(p))
            elif name.endswith("dt_proj.bias"):
                p.uniform_(-3.0, 0.0)
            elif name.endswith(".D"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))


model = Classifier(config).double()
randomize(model)


def tensors_of(prefix, named):
    return {f"{prefix}/{name}": value.detach().clone().contiguous() for name, value in named.items()}


def save(name, tensors, configuration=None):
    if len(sys.argv) > 1 and name not in sys.argv[1:]:
        return
    path = out_dir / name
    save_file(tensors, str(path), metadata={"config": json.dumps(configuration or config), "smoothing": str(smoothing)})
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def save_classifier(name, classifier, configuration):
    """Logits, label-smoothed cross-entropy and every gradient of `classifier` on images/labels."""
    logits = classifier(images)
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    classifier.zero_grad()
    loss.backward()
    params = classifier.swift_state_dict()
    save(name, {
        **tensors_of("param", params),
        **tensors_of("grad", {n: p.grad for n, p in params.items()}),
        "input.images": images, "input.labels": labels, "output.logits": logits.detach(),
        "output.loss": loss.detach().reshape(1),
    }, configuration)
    return params


# 1. The classifier on full images: logits, label-smoothed cross-entropy, every gradient.
images = torch.randn(2, 3, 16, 16)
labels = torch.tensor([2, 0])
params = save_classifier("parity_classifier.safetensors", model, config)

# 2. The encoder on a fixed visible-token set (as in masked pretraining): 6 of 16 tokens per image.
positions = torch.tensor([[0, 3, 5, 6, 10, 15], [1, 2, 7, 8, 12, 13]])
tokens = model.encoder(images, positions)
weights = torch.randn_like(tokens)
encoder_loss = (tokens * weights).sum()
model.zero_grad()
encoder_loss.backward()
encoder_params = {n: p for n, p in params.items() if not n.startswith("head.")}
save("parity_encoder_masked.safetensors", {
    **tensors_of("param", encoder_params),
    **tensors_of("grad", {n: p.grad for n, p in encoder_params.items()}),
    "input.images": images, "input.positions": positions, "input.weights": weights,
    "output.tokens": tokens.detach(), "output.loss": encoder_loss.detach().reshape(1),
})

# 3. AdamW: three steps on a decayed weight and an undecayed bias, PyTorch's own optimizer.
weight = torch.nn.Parameter(torch.randn(4, 3))
bias = torch.nn.Parameter(torch.randn(3))
initial = {"weight": weight.detach().clone(), "bias": bias.detach().clone()}
optimizer = torch.optim.AdamW([{"params": [weight], "weight_decay": 0.05}, {"params": [bias], "weight_decay": 0.0}],
                              lr=0.01, betas=(0.9, 0.95), eps=1e-8)
gradients = {}
for step, lr in enumerate([0.01, 0.02, 0.005]):
    for group in optimizer.param_groups:
        group["lr"] = lr
    weight.grad = torch.randn(4, 3)
    bias.grad = torch.randn(3)
    gradients[f"grad.{step}.weight"] = weight.grad.clone()
    gradients[f"grad.{step}.bias"] = bias.grad.clone()
    optimizer.step()
path = out_dir / "adamw_steps.safetensors"
if len(sys.argv) == 1 or path.name in sys.argv[1:]:
    save_file({"initial.weight": initial["weight"], "initial.bias": initial["bias"], **gradients,
               "final.weight": weight.detach().clone(), "final.bias": bias.detach().clone()}, str(path),
              metadata={"learning_rates": "0.01,0.02,0.005", "betas": "0.9,0.95", "weight_decay": "0.05"})
    print(f"wrote {path}")

# 4. A variant: learned softmax merge of the directions and causal local convolutions (Vim's form).
torch.manual_seed(7)
variant = {**config, "name": "parity_variant", "merge": "softmax", "localPadding": "causal"}
variant_model = Classifier(variant).double()
randomize(variant_model)
save_classifier("parity_variant.safetensors", variant_model, variant)

# 5. R1, the hierarchical layout, on 32-px images: widths 4-8-16-32, depths 1-1-2-1.
torch.manual_seed(11)
hierarchical = {**config, "name": "parity_hierarchical", "layout": "hierarchical", "imageSize": 32, "dim": 4,
                "levelDepths": [1, 1, 2, 1], "levelHeads": [1, 1, 2, 2], "levelAttentionBlocks": [0, 0, 1, 1],
                "convolutionLevels": 2, "directions": ["h", "v_flip", "w2"], "localKernels": [3]}
hierarchical_model = Classifier(hierarchical).double()
randomize(hierarchical_model)
images = torch.randn(2, 3, 32, 32)
save_classifier("parity_hierarchical.safetensors", hierarchical_model, hierarchical)

# 6. A local path per scan direction, run along the direction's visiting order (Vim's form).
torch.manual_seed(13)
per_direction = {**config, "name": "parity_per_direction", "localPerDirection": True, "directions": ["h", "v_flip", "w2"]}
per_direction_model = Classifier(per_direction).double()
randomize(per_direction_model)
images = torch.randn(2, 3, 16, 16)
save_classifier("parity_per_direction.safetensors", per_direction_model, per_direction)

# 7. SimMIM-style masked pretraining's encoder: every cell, the hidden patches' tokens replaced by a
# learned mask token (the classifier of part 1 as the encoder; 10 of 16 cells hidden per image).
torch.manual_seed(17)
images = torch.randn(2, 3, 16, 16)
hidden = torch.rand(2, 16) < 0.6
mask_token = torch.nn.Parameter(torch.randn(config["dim"]))
tokens = model.encoder(images, mask_token=mask_token, hidden=hidden)
weights = torch.randn_like(tokens)
encoder_loss = (tokens * weights).sum()
model.zero_grad()
encoder_loss.backward()
save("parity_encoder_mask_token.safetensors", {
    **tensors_of("param", encoder_params),
    **tensors_of("grad", {n: p.grad for n, p in encoder_params.items()}),
    "param/mask_token": mask_token.detach().clone(), "grad/mask_token": mask_token.grad.clone(),
    "input.images": images, "input.hidden": hidden.to(torch.int64), "input.weights": weights,
    "output.tokens": tokens.detach(), "output.loss": encoder_loss.detach().reshape(1),
})
