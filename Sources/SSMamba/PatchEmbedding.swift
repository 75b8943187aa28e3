import Randomness
import Tensors

/// Patch embedding: PyTorch's `Conv2d(3, dim, kernel=p, stride=p)` (weight (dim, 3, p, p)), as
/// im2col + GEMM, producing one token per patch in raster order: (batch, tokens, dim).
///
/// Only the patches in the `TokenGrid` are embedded, so masked pretraining pays for the visible
/// quarter only. Images are (batch, channels, H, W) float32 with H and W multiples of p.
public final class PatchEmbedding: ParameterOwner, KeepsActivations {
    public let projection: Linear
    public let patch: Int, channels: Int, dim: Int
    private var imageShape: [Int] = []
    private var grid: TokenGrid?

    public init(_ name: String, channels: Int = 3, dim: Int, patch: Int, using rng: inout RandomGenerator) {
        (self.patch, self.channels, self.dim) = (patch, channels, dim)
        projection = Linear(parameterName(name, "proj"), inFeatures: channels * patch * patch, outFeatures: dim, using: &rng)
        // Stored in the conv layout (dim, channels, p, p), as in PyTorch; the rows are the same.
        projection.weight.value = projection.weight.value.reshaped([dim, channels, patch, patch])
        projection.weight.gradient = projection.weight.gradient.reshaped([dim, channels, patch, patch])
    }

    public var parameters: [Parameter] { projection.parameters }

    /// Calls `body(imageOffset, columnOffset)` for every patch row segment of the grid's tokens:
    /// p consecutive pixels of one channel row in the image, and the matching p entries of that
    /// token's (c, ky, kx) column row (the weight's layout). im2col and its inverse share it.
    private func forEachPatchRow(imageShape: [Int], grid: TokenGrid, _ body: (Int, Int) -> Void) {
        let (height, width) = (imageShape[2], imageShape[3])
        let p = patch, rowLength = channels * p * p
        for b in 0..<grid.batch { for k in 0..<grid.count {
            let cell = grid.positions[b * grid.count + k]
            let (top, left) = ((cell / grid.width) * p, (cell % grid.width) * p)
            var column = (b * grid.count + k) * rowLength
            for c in 0..<channels { for ky in 0..<p {
                body(((b * channels + c) * height + top + ky) * width + left, column)
                column += p
            } }
        } }
    }

    /// im2col: the patches of the grid's tokens as rows of (c, ky, kx).
    func columns(_ images: Tensor, grid: TokenGrid) -> Tensor {
        let p = patch
        var out = Tensor(zeros: [grid.batch, grid.count, channels * p * p])
        images.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer { os in
            forEachPatchRow(imageShape: images.shape, grid: grid) { image, column in
                (os.baseAddress! + column).update(from: xs.baseAddress! + image, count: p)
            }
        } }
        return out
    }

    /// With `keeping` false nothing is stored for a backward, so threads may run it at once.
    public func forward(_ images: Tensor, grid: TokenGrid, keeping: Bool = true) -> Tensor {
        precondition(images.rank == 4 && images.shape[1] == channels && images.shape[0] == grid.batch
                     && images.shape[2] == grid.height * patch && images.shape[3] == grid.width * patch,
                     "patch embedding expects (\(grid.batch), \(channels), \(grid.height * patch), \(grid.width * patch)), got \(images.shape)")
        if keeping { (imageShape, self.grid) = (images.shape, grid) }
        return projection.forward(columns(images, grid: grid), keeping: keeping)
    }

    public func releaseActivations() { projection.releaseActivations() }

    /// Accumulates the weight gradients and returns ∂images (zero outside the grid's patches).
    @discardableResult
    public func backward(_ g: Tensor) -> Tensor {
        guard let grid else { preconditionFailure("patch embedding backward without a forward") }
        let gColumns = projection.backward(g)
        let p = patch
        var gImages = Tensor(zeros: imageShape)
        gColumns.withUnsafeBufferPointer { gs in gImages.withUnsafeMutableBufferPointer { os in
            forEachPatchRow(imageShape: imageShape, grid: grid) { image, column in
                (os.baseAddress! + image).update(from: gs.baseAddress! + column, count: p)
            }
        } }
        return gImages
    }
}
