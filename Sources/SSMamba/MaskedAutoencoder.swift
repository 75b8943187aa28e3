import Foundation
import Randomness
import Tensors

/// MAMIM settings: how much to mask, what the encoder sees, and the light decoder's shape (docs/MODEL.md).
public struct MaskedPretrainingSettings: Codable, Sendable, Equatable {
    /// What the encoder sees of a masked image.
    public enum Masking: String, Codable, Sendable, CaseIterable {
        /// MAE: the visible patches only, each scan direction visiting them in its own order (a
        /// quarter of the tokens at ratio 0.75: cheap, but local operators see sparse neighbours).
        case mae
        /// SimMIM: every cell of the grid, hidden patches replaced by a learned mask token at the
        /// input (`MaskToken`), so every operator sees the neighbourhoods it sees in fine-tuning.
        case simmim
    }
    public var maskRatio: Double = 0.75
    public var masking: Masking = .mae
    public var decoderDim = 128
    public var decoderDepth = 2
    public var decoderHeads = 4
    /// MLP width of the decoder blocks as a multiple of their width; nil: the encoder's `mlpRatio`.
    public var decoderMlpRatio: Int?
    public init() {}
}

/// Mamba masked image modelling (MAMIM).
///
/// Per image, a fresh random `maskRatio` of the patch positions is hidden. With `.mae` masking the
/// encoder sees only the visible tokens (each scan direction visits them in its own order; LPR
/// uses sparse semantics) and the decoder, after embedding them to `decoderDim`, fills the hidden
/// positions with its learned mask token; with `.simmim` the encoder runs on every cell, hidden
/// patches replaced by a learned mask token at its input, and the decoder embeds all its tokens.
/// The decoder adds fixed 2-D sine-cosine positions, runs `decoderDepth` attention blocks over all
/// positions, normalises, and predicts each patch's p·p·C pixels. The loss is the mean squared
/// error over masked patches only, against per-patch normalised pixels
/// t̂ = (t − mean) / √(var + 1e-6). Encoder parameters keep the classifier's names, so a
/// pretrained encoder loads into a `Classifier` as is; the parameters only pretraining uses are
/// `decoder.*` (the encoder's input mask token too: `decoder.input_mask_token`).
public final class MaskedAutoencoder: ParameterOwner {
    public let encoder: Encoder
    public let settings: MaskedPretrainingSettings
    let embed: Linear
    /// The decoder's stand-in for hidden positions (`.mae` only).
    let maskToken: Parameter?
    /// The encoder's stand-in for hidden patches (`.simmim` only).
    let inputMaskToken: MaskToken?
    let blocks: [Block]
    let norm: LayerNormalization
    let prediction: Linear
    let positionTable: Tensor  // (cells, decoderDim), fixed

    // Kept for the backward.
    private var grid: TokenGrid?
    private var hidden: [Bool] = []
    private var lossGradient = Tensor(zeros: [0])

    public init(config: ModelConfiguration, settings: MaskedPretrainingSettings = MaskedPretrainingSettings(),
                using rng: inout RandomGenerator) throws {
        guard settings.maskRatio > 0 && settings.maskRatio < 1 else {
            throw ConfigurationError("mask ratio must be in (0, 1), got \(settings.maskRatio)")
        }
        guard settings.decoderDim % settings.decoderHeads == 0 else {
            throw ConfigurationError("decoder width \(settings.decoderDim) must be divisible by its heads \(settings.decoderHeads)")
        }
        guard config.layout == .plain else {
            throw ConfigurationError("MAMIM pretraining needs the plain layout; '\(config.name)' is hierarchical (R1), whose SparK-style masked pretraining is not built: fine-tune it from scratch")
        }
        encoder = try Encoder(config: config, using: &rng)
        self.settings = settings
        var decoder = config
        decoder.dim = settings.decoderDim
        decoder.heads = settings.decoderHeads
        decoder.mlpRatio = settings.decoderMlpRatio ?? config.mlpRatio
        decoder.dropPathRate = 0
        embed = Linear("decoder.embed", inFeatures: config.dim, outFeatures: settings.decoderDim, using: &rng)
        maskToken = settings.masking == .mae ? Parameter("decoder.mask_token", Tensor.normal([settings.decoderDim], using: &rng) * 0.02, decays: false) : nil
        blocks = try (0..<settings.decoderDepth).map { i in
            try Block("decoder.blocks.\(i)", config: decoder, dim: decoder.dim, heads: decoder.heads, attention: true, dropPath: 0, using: &rng)
        }
        norm = LayerNormalization("decoder.norm", width: settings.decoderDim)
        let patchValues = config.patchSize * config.patchSize * config.channels
        prediction = Linear("decoder.pred", inFeatures: settings.decoderDim, outFeatures: patchValues, using: &rng)
        positionTable = Self.sineCosinePositions(side: config.gridSide, dim: settings.decoderDim)
        inputMaskToken = settings.masking == .simmim ? MaskToken("decoder.input_mask_token", width: config.dim, using: &rng) : nil
    }

    public var config: ModelConfiguration { encoder.config }
    public var parameters: [Parameter] {
        encoder.parameters + (inputMaskToken?.parameters ?? []) + embed.parameters + (maskToken.map { [$0] } ?? [])
            + blocks.flatMap(\.parameters) + norm.parameters + prediction.parameters
    }

    /// A fresh random visible set per image: round((1 − ratio)·cells) positions, ascending.
    public func randomVisibleGrid(batch: Int, using rng: inout RandomGenerator) -> TokenGrid {
        let cells = config.tokens
        let visible = max(1, Int((Double(cells) * (1 - settings.maskRatio)).rounded()))
        var positions: [Int] = []
        positions.reserveCapacity(batch * visible)
        var generators = rng.perSample(batch)  // each image's mask from its own generator
        for i in 0..<batch {
            positions += generators[i].permutation(cells).prefix(visible).sorted()
        }
        return TokenGrid(batch: batch, height: config.gridSide, width: config.gridSide, positions: positions)
    }

    /// The masked-patch loss for `images` (B, C, H, W) with `visible` tokens, and the predicted
    /// normalised patches (B, cells, p·p·C). With `training`, keeps what `backward()` needs.
    public func loss(_ images: Tensor, visible: TokenGrid, training: Bool, using rng: inout RandomGenerator) -> (loss: Float, prediction: Tensor) {
        let batch = images.shape[0], cells = config.tokens, d = settings.decoderDim
        let isHidden = Self.hiddenCells(visible)
        let fullGrid = TokenGrid.full(batch: batch, height: config.gridSide, width: config.gridSide)
        // The decoder's input: every cell, positions added.
        var full: Tensor
        if let inputMaskToken {
            let patches = inputMaskToken.substitute(encoder.embedPatches(images, grid: fullGrid, training: training), hidden: isHidden)
            full = embed.forward(encoder.encode(patchTokens: patches, grid: fullGrid, training: training, using: &rng))  // (B, cells, d)
            full.withUnsafeMutableBufferPointer { f in positionTable.withUnsafeBufferPointer { p in
                for b in 0..<batch { for i in 0..<(cells * d) { f[b * cells * d + i] += p[i] } }
            } }
        } else {
            let tokens = encoder.forward(images, grid: visible, training: training, using: &rng)
            let embedded = embed.forward(tokens)  // (B, V, d)
            // Scatter visible tokens into the full grid; hidden cells get the mask token.
            full = Tensor(zeros: [batch, cells, d])
            full.withUnsafeMutableBufferPointer { f in
                embedded.withUnsafeBufferPointer { e in maskToken!.value.withUnsafeBufferPointer { m in positionTable.withUnsafeBufferPointer { p in
                    for b in 0..<batch {
                        for c in 0..<cells where isHidden[b * cells + c] {
                            for j in 0..<d { f[(b * cells + c) * d + j] = m[j] + p[c * d + j] }
                        }
                        for k in 0..<visible.count {
                            let c = visible.positions[b * visible.count + k]
                            for j in 0..<d { f[(b * cells + c) * d + j] = e[(b * visible.count + k) * d + j] + p[c * d + j] }
                        }
                    }
                } } }
            }
        }
        var x = full
        for block in blocks { x = block.forward(x, grid: fullGrid, training: training, using: &rng) }
        let predicted = prediction.forward(norm.forward(x))  // (B, cells, P)
        let target = Self.normalisedPatches(images, patch: config.patchSize)
        let values = predicted.shape[2]
        let maskedCount = isHidden.filter { $0 }.count
        var total = 0.0
        var gradient = Tensor(zeros: predicted.shape)
        let scale = 1 / Float(maskedCount * values)
        predicted.withUnsafeBufferPointer { pr in target.withUnsafeBufferPointer { t in gradient.withUnsafeMutableBufferPointer { g in
            for cell in 0..<(batch * cells) where isHidden[cell] {
                for j in 0..<values {
                    let diff = pr[cell * values + j] - t[cell * values + j]
                    total += Double(diff * diff)
                    g[cell * values + j] = 2 * diff * scale
                }
            }
        } } }
        if training {
            grid = visible
            hidden = isHidden
            lossGradient = gradient
        } else {
            releaseActivations()
        }
        return (Float(total / Double(maskedCount * values)), predicted)
    }

    /// Accumulates every parameter's gradient of the last training `loss`, times `scale`
    /// (1/n when n micro-batches are accumulated into one step).
    public func backward(scale: Float = 1) {
        guard let grid else { preconditionFailure("backward without a training forward") }
        let batch = grid.batch, cells = config.tokens, d = settings.decoderDim
        var g = norm.backward(prediction.backward(scale == 1 ? lossGradient : lossGradient * scale))
        for block in blocks.reversed() { g = block.backward(g) }
        if let inputMaskToken {
            let gPatches = encoder.backwardToPatchTokens(embed.backward(g))
            encoder.backwardPatchEmbedding(inputMaskToken.backward(gPatches, hidden: hidden))
            return
        }
        // Gather: visible cells flow back to the embedding, hidden cells to the mask token.
        var gEmbedded = Tensor(zeros: [batch, grid.count, d])
        g.withUnsafeBufferPointer { gs in
            gEmbedded.withUnsafeMutableBufferPointer { ge in maskToken!.gradient.withUnsafeMutableBufferPointer { gm in
                for b in 0..<batch {
                    for k in 0..<grid.count {
                        let c = grid.positions[b * grid.count + k]
                        for j in 0..<d { ge[(b * grid.count + k) * d + j] = gs[(b * cells + c) * d + j] }
                    }
                    for c in 0..<cells where hidden[b * cells + c] {
                        for j in 0..<d { gm[j] += gs[(b * cells + c) * d + j] }
                    }
                }
            } }
        }
        encoder.backward(embed.backward(gEmbedded))
    }

    /// hidden[b·cells + c]: whether cell c of image b is outside `visible`.
    static func hiddenCells(_ visible: TokenGrid) -> [Bool] {
        var hidden = [Bool](repeating: true, count: visible.batch * visible.cells)
        for b in 0..<visible.batch {
            for k in 0..<visible.count { hidden[b * visible.cells + visible.positions[b * visible.count + k]] = false }
        }
        return hidden
    }

    func releaseActivations() {
        grid = nil
        hidden = []
        lossGradient = Tensor(zeros: [0])
        embed.releaseActivations()
        prediction.releaseActivations()
        norm.releaseActivations()
        blocks.forEach { $0.releaseActivations() }
    }

    /// Patches (B, cells, p·p·C) in (row, column, channel) order, each normalised to zero mean and
    /// unit variance: (t − mean) / √(var + 1e-6).
    public static func normalisedPatches(_ images: Tensor, patch p: Int) -> Tensor {
        patchesWithStatistics(images, patch: p).normalised
    }

    /// The normalised patches, and each patch's mean and √(var + 1e-6) (to undo the normalisation).
    static func patchesWithStatistics(_ images: Tensor, patch p: Int) -> (normalised: Tensor, means: [Float], deviations: [Float]) {
        let (batch, channels, height, width) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let side = height / p, across = width / p, values = p * p * channels
        var out = Tensor(zeros: [batch, side * across, values])
        var means = [Float](repeating: 0, count: batch * side * across), deviations = means
        images.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            for b in 0..<batch {
                for row in 0..<side {
                    for column in 0..<across {
                        let patch = (b * side + row) * across + column, base = patch * values
                        var index = 0
                        for y in 0..<p { for x in 0..<p { for c in 0..<channels {
                            dst[base + index] = src[((b * channels + c) * height + row * p + y) * width + column * p + x]
                            index += 1
                        } } }
                        var mean: Float = 0, squares: Float = 0
                        for j in 0..<values { mean += dst[base + j] }
                        mean /= Float(values)
                        for j in 0..<values { let v = dst[base + j] - mean; squares += v * v }
                        let deviation = (squares / Float(values) + 1e-6).squareRoot()
                        for j in 0..<values { dst[base + j] = (dst[base + j] - mean) / deviation }
                        (means[patch], deviations[patch]) = (mean, deviation)
                    }
                }
            }
        } }
        return (out, means, deviations)
    }

    /// `images` (B, C, H, W) with every patch hidden by `visible` rewritten: `value(b, cell, index,
    /// channel)` gives pixel `index` of the patch in its (row, column, channel) order.
    public static func replacingHiddenPatches(_ images: Tensor, visible: TokenGrid, patch p: Int,
                                              with value: (_ image: Int, _ cell: Int, _ index: Int, _ channel: Int) -> Float) -> Tensor {
        let (channels, height, width) = (images.shape[1], images.shape[2], images.shape[3])
        let across = width / p
        var out = images
        for b in 0..<visible.batch {
            let shown = Set(visible.positions[(b * visible.count)..<((b + 1) * visible.count)])
            for cell in 0..<visible.cells where !shown.contains(cell) {
                let (row, column) = (cell / across, cell % across)
                var index = 0
                for y in 0..<p { for x in 0..<p { for c in 0..<channels {
                    out.scalars[((b * channels + c) * height + row * p + y) * width + column * p + x] = value(b, cell, index, c)
                    index += 1
                } } }
            }
        }
        return out
    }

    /// For looking at: `images` with the hidden patches replaced by the model's prediction, brought
    /// back from normalised pixels with each true patch's mean and deviation (how MAE shows them).
    public func reconstruct(_ images: Tensor, visible: TokenGrid) -> Tensor {
        var unused = RandomGenerator(seed: 0)
        let (_, predicted) = loss(images, visible: visible, training: false, using: &unused)
        let (_, means, deviations) = Self.patchesWithStatistics(images, patch: config.patchSize)
        let (cells, values) = (config.tokens, predicted.shape[2])
        return Self.replacingHiddenPatches(images, visible: visible, patch: config.patchSize) { b, cell, index, _ in
            predicted.scalars[(b * cells + cell) * values + index] * deviations[b * cells + cell] + means[b * cells + cell]
        }
    }

    /// Fixed 2-D sine-cosine position table (cells, dim): half the width encodes the row, half
    /// the column, each as sin/cos at geometric frequencies.
    static func sineCosinePositions(side: Int, dim: Int) -> Tensor {
        var table = Tensor(zeros: [side * side, dim])
        let quarter = dim / 4
        table.withUnsafeMutableBufferPointer { t in
            for row in 0..<side {
                for column in 0..<side {
                    let cell = row * side + column
                    for i in 0..<quarter {
                        let frequency = 1 / pow(10_000, Double(i) / Double(max(quarter, 1)))
                        t[cell * dim + i] = Float(sin(Double(row) * frequency))
                        t[cell * dim + quarter + i] = Float(cos(Double(row) * frequency))
                        t[cell * dim + 2 * quarter + i] = Float(sin(Double(column) * frequency))
                        t[cell * dim + 3 * quarter + i] = Float(cos(Double(column) * frequency))
                    }
                }
            }
        }
        return table
    }
}
