"""PyTorch reference of the SSMamba model, written to mirror Sources/SSMamba layer by layer.

Parameter names are the ones the Swift engine uses in checkpoints (PyTorch `state_dict` names), so
weights move both ways. Used for parity fixtures (make_model_fixtures.py) and as the PyTorch peer
in the benchmarks. Development only: nothing at run time imports Python.

The configuration is the JSON of Swift's `ModelConfiguration` (same keys).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def scan_time(direction, i, j, height, width):
    """Visiting time of grid cell (i, j) before any flip (see ScanDirection.swift)."""
    base = direction[:-5] if direction.endswith("_flip") else direction
    if base == "h":
        return i * width + j
    if base == "v":
        return j * height + i
    k = int(base[1:])
    per_row = (width + k - 1) // k
    return ((i // k) * per_row + (j // k)) * k * k + (i % k) * k + (j % k)


_orders = {}


def scan_order(direction, positions, height, width):
    """positions: (B, L) ascending grid indices → (B, L) token indices in visiting order (cached)."""
    key = (direction, height, width, tuple(positions.flatten().tolist()), positions.shape)
    if key not in _orders:
        _orders[key] = _scan_order(direction, positions, height, width)
    return _orders[key]


def _scan_order(direction, positions, height, width):
    orders = []
    for row in positions.tolist():
        keyed = sorted((scan_time(direction, c // width, c % width, height, width), k) for k, c in enumerate(row))
        order = [k for _, k in keyed]
        if direction.endswith("_flip"):
            order.reverse()
        orders.append(order)
    return torch.tensor(orders, dtype=torch.long)


def gather_tokens(x, order):
    return torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def selective_scan(u, delta, A, B, C, D):
    """Sequential S6 recurrence, discretised per step. u, delta: (B, L, E); A: (E, N); B, C: (B, L, N)."""
    batch, length, channels = u.shape
    h = u.new_zeros(batch, channels, A.shape[1])
    ys = []
    for t in range(length):
        dt = delta[:, t].unsqueeze(-1)                        # (B, E, 1)
        h = torch.exp(dt * A) * h + dt * B[:, t].unsqueeze(1) * u[:, t].unsqueeze(-1)
        ys.append(torch.einsum("ben,bn->be", h, C[:, t]) + D * u[:, t])
    return torch.stack(ys, dim=1)


class DirectionalScan(nn.Module):
    def __init__(self, channels, state, rank):
        super().__init__()
        self.rank, self.state = rank, state
        self.x_proj = nn.Linear(channels, rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(rank, channels)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state + 1, dtype=torch.float32)).repeat(channels, 1))
        self.D = nn.Parameter(torch.ones(channels))

    def forward(self, x):
        delta, B, C = torch.split(self.x_proj(x), [self.rank, self.state, self.state], dim=-1)
        return selective_scan(x, F.softplus(self.dt_proj(delta)), -torch.exp(self.A_log), B, C, self.D)


class DirectionalMultiScale(nn.Module):
    def __init__(self, config, dim=None):
        super().__init__()
        dim = dim or config["dim"]
        channels = config["expand"] * dim
        self.directions = config["directions"]
        self.merge = config["merge"]
        self.causal = config.get("localPadding", "same") == "causal"
        # One local path shared in storage order, or one per direction along its visiting order (Vim).
        self.per_direction = config.get("localPerDirection", False)
        self.in_proj = nn.Linear(dim, 2 * channels, bias=False)

        def local_path():
            # "same": centred kernel; causal (Vim): pad k − 1 on both sides and keep the first L outputs.
            return nn.ModuleList(
                nn.Conv1d(channels, channels, k, padding=(k - 1) if self.causal else (k - 1) // 2, groups=channels)
                for k in config["localKernels"])
        self.convs = nn.ModuleList() if self.per_direction else local_path()
        if self.merge == "softmax":
            self.merge_logits = nn.Parameter(torch.zeros(len(self.directions)))
        rank = (dim + 15) // 16
        self.scans = nn.ModuleList(DirectionalScan(channels, config["stateSize"], rank) for _ in self.directions)
        if self.per_direction:
            for scan in self.scans:
                scan.convs = local_path()
        self.out_proj = nn.Linear(channels, dim, bias=False)

    @staticmethod
    def local(convs, x):
        """silu(Σ_k conv_k(x)) along the token axis of (B, L, C)."""
        xt = x.transpose(1, 2)
        length = xt.shape[-1]
        return F.silu(sum(conv(xt)[..., :length] for conv in convs).transpose(1, 2))

    def forward(self, u, positions, height, width):
        x, z = self.in_proj(u).chunk(2, dim=-1)
        if not self.per_direction:
            x = self.local(self.convs, x)
        if self.merge == "softmax":
            weights = self.merge_logits.softmax(0)
        else:
            weights = torch.full((len(self.directions),), 1.0 / len(self.directions) if self.merge == "mean" else 1.0)
        y = torch.zeros_like(x)
        for s, (direction, scan) in enumerate(zip(self.directions, self.scans)):
            order = scan_order(direction, positions, height, width)
            visited = gather_tokens(x, order)
            if self.per_direction:
                visited = self.local(scan.convs, visited)
            ys = scan(visited) * weights[s]
            y = y.scatter_add(1, order.unsqueeze(-1).expand(-1, -1, y.shape[-1]), ys)
        return self.out_proj(y * F.silu(z))


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = ((q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)).softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(b, n, d))


class LocalPerceptionResidual(nn.Module):
    """x + depthwise 3×3 conv on the grid; masked cells are zero and produce no output."""

    def __init__(self, dim):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x, positions, height, width):
        b, n, c = x.shape
        grid = x.new_zeros(b, height * width, c)
        index = positions.unsqueeze(-1).expand(-1, -1, c)
        grid = grid.scatter(1, index, x)
        conv = self.conv(grid.transpose(1, 2).reshape(b, c, height, width)).reshape(b, c, height * width).transpose(1, 2)
        return x + torch.gather(conv, 1, index)


class Block(nn.Module):
    def __init__(self, config, attention, dim=None, heads=None):
        super().__init__()
        dim = dim or config["dim"]
        self.lpr = LocalPerceptionResidual(dim) if config["useLPR"] else None
        self.norm1 = nn.LayerNorm(dim)
        self.mixer = SelfAttention(dim, heads or config["heads"]) if attention else DirectionalMultiScale(config, dim)
        self.attention = attention
        if config["mlpRatio"] > 0:
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = nn.Sequential()
            self.mlp.fc1 = nn.Linear(dim, config["mlpRatio"] * dim)
            self.mlp.act = nn.GELU()
            self.mlp.fc2 = nn.Linear(config["mlpRatio"] * dim, dim)
        else:
            self.mlp = None

    def forward(self, x, positions, height, width):
        if self.lpr is not None:
            x = self.lpr(x, positions, height, width)
        normed = self.norm1(x)
        x = x + (self.mixer(normed) if self.attention else self.mixer(normed, positions, height, width))
        if self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        return x


class Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.grid = config["imageSize"] // config["patchSize"]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(config["channels"], config["dim"], config["patchSize"], stride=config["patchSize"])
        depth, attention = config["depth"], config["attentionBlocks"]
        self.blocks = nn.ModuleList(Block(config, i >= depth - attention) for i in range(depth))
        self.norm = nn.LayerNorm(config["dim"])

    def forward(self, images, positions=None, mask_token=None, hidden=None):
        """`positions` (B, V): encode only those cells (MAE). `mask_token` (dim) and `hidden` (B, cells,
        bool): every cell, the patch tokens of hidden cells replaced by the mask token (SimMIM)."""
        tokens = self.patch_embed.proj(images).flatten(2).transpose(1, 2)
        if mask_token is not None:
            tokens = torch.where(hidden.unsqueeze(-1), mask_token.expand_as(tokens), tokens)
        if positions is None:
            positions = torch.arange(tokens.shape[1]).repeat(tokens.shape[0], 1)
        x = gather_tokens(tokens, positions)
        for block in self.blocks:
            x = block(x, positions, self.grid, self.grid)
        return self.norm(x)


def channel_norm(norm, x):
    """LayerNorm over the channels of an NCHW tensor."""
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvolutionStem(nn.Module):
    """Two 3×3 stride-2 convolutions (no bias), each followed by LayerNorm over channels and GELU."""

    def __init__(self, channels, dim):
        super().__init__()
        middle = max(1, dim // 2)
        self.conv1 = nn.Conv2d(channels, middle, 3, stride=2, padding=1, bias=False)
        self.norm1 = nn.LayerNorm(middle)
        self.conv2 = nn.Conv2d(middle, dim, 3, stride=2, padding=1, bias=False)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, images):
        x = F.gelu(channel_norm(self.norm1, self.conv1(images)))
        return F.gelu(channel_norm(self.norm2, self.conv2(x)))


class ConvolutionBlock(nn.Module):
    """x + LN(conv2(GELU(LN(conv1(x))))), convolutions 3×3 with bias."""

    def __init__(self, dim):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.norm1 = nn.LayerNorm(dim)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x):
        y = F.gelu(channel_norm(self.norm1, self.conv1(x)))
        return x + channel_norm(self.norm2, self.conv2(y))


class HierarchicalEncoder(nn.Module):
    """R1: stem to 1/4, then levels of width dim·2^i; levels after the first open with a 3×3 stride-2
    convolution; the first `convolutionLevels` levels convolutional, the others SSMamba blocks whose
    last `levelAttentionBlocks[i]` use attention. Tokens in raster order, as in the Swift engine."""

    def __init__(self, config):
        super().__init__()
        dim = config["dim"]
        self.patch_embed = ConvolutionStem(config["channels"], dim)
        self.levels = nn.ModuleList()
        for i, depth in enumerate(config["levelDepths"]):
            level = nn.Module()
            width = dim << i
            if i > 0:
                level.downsample = nn.Conv2d(width // 2, width, 3, stride=2, padding=1, bias=False)
            level.convolutional = i < config["convolutionLevels"]
            attention = config["levelAttentionBlocks"][i]
            level.blocks = nn.ModuleList(
                ConvolutionBlock(width) if level.convolutional
                else Block(config, j >= depth - attention, dim=width, heads=config["levelHeads"][i])
                for j in range(depth))
            self.levels.append(level)
        self.norm = nn.LayerNorm(dim << (len(config["levelDepths"]) - 1))

    def forward(self, images):
        x = self.patch_embed(images)
        for level in self.levels:
            if hasattr(level, "downsample"):
                x = level.downsample(x)
            if level.convolutional:
                for block in level.blocks:
                    x = block(x)
            else:
                b, c, h, w = x.shape
                tokens = x.flatten(2).transpose(1, 2)
                positions = torch.arange(h * w).repeat(b, 1)
                for block in level.blocks:
                    tokens = block(tokens, positions, h, w)
                x = tokens.transpose(1, 2).reshape(b, c, h, w)
        return self.norm(x.flatten(2).transpose(1, 2))


class Classifier(nn.Module):
    def __init__(self, config):
        super().__init__()
        hierarchical = config.get("layout", "plain") == "hierarchical"
        self.encoder = HierarchicalEncoder(config) if hierarchical else Encoder(config)
        width = config["dim"] << (len(config["levelDepths"]) - 1) if hierarchical else config["dim"]
        self.head = nn.Linear(width, config["classes"])

    def forward(self, images):
        return self.head(self.encoder(images).mean(dim=1))

    def swift_state_dict(self):
        """Parameters under the Swift engine's names (the encoder's are at the top level)."""
        return {name.removeprefix("encoder."): p for name, p in self.named_parameters()}
