import Flow
import Foundation
import Slides
import TileCache
import Tiling

/// `tissue`: adds the tissue mask to each slide (and writes it as PNG when asked).
struct TissueStage: Stage {
    let detector: TissueDetector
    let maskFolder: URL?

    /// Masks are written as PNG into `masks` when given.
    init(_ p: TissueKind.Parameters, masks: URL?) {
        var parameters = TissueDetector.Parameters()
        parameters.micronsPerPixel = p.maskMpp
        parameters.minimumSaturation = p.minSaturation
        parameters.minimumRegionArea = p.minRegionUm2
        parameters.closingRadius = p.closingRadius
        parameters.fillHoles = p.fillHoles
        parameters.suppressPen = p.suppressPen
        detector = TissueDetector(parameters: parameters)
        maskFolder = masks
    }

    func process(_ input: SlideItem, _ context: StageContext<SlideItem>) throws {
        var slide = input
        let mask = try detector.detect(slide.reader)
        slide.mask = mask
        context.count("tissue.slides")
        if let maskFolder {
            try FileManager.default.createDirectory(at: maskFolder, withIntermediateDirectories: true)
            let stem = ((slide.path as NSString).lastPathComponent as NSString).deletingPathExtension
            try mask.writePNG(to: maskFolder.appendingPathComponent("\(stem).png"))
        }
        try context.emit(slide)
    }
}

/// Says whether a tile is already in a flow's cache, so the tiles stage need not read it.
final class CachePresence: @unchecked Sendable {
    let store: TileStore
    let parameters: UInt64
    init(store: TileStore, parameters: UInt64) {
        self.store = store
        self.parameters = parameters
    }
    func key(_ tile: Tile) -> TileKey {
        TileKey(source: tile.sourceIdentity, parameters: parameters, x: tile.level0X, y: tile.level0Y, micronsPerPixel: tile.requestedMicronsPerPixel)
    }
}

/// `tiles`: the tissue grid of each slide and its multi-magnification crops.
struct TilesStage: Stage {
    let grid: TileGrid
    let scales: [Double]
    let size: Int
    let allowUpsampling: Bool
    let maximumPerSlide: Int?
    /// The cache this step feeds through deterministic steps only, if any: positions whose tiles
    /// it holds are announced without reading the slide.
    let presence: CachePresence?

    init(_ p: TilesKind.Parameters, presence: CachePresence?) {
        size = p.size
        grid = TileGrid(micronsPerPixel: p.mpp, size: size, stride: p.stride, minimumTissue: p.minTissue)
        scales = p.scales ?? [p.mpp]
        allowUpsampling = p.allowUpsampling
        maximumPerSlide = p.maxPerSlide
        self.presence = presence
    }

    func process(_ slide: SlideItem, _ context: StageContext<Tile>) throws {
        let reader = slide.reader
        let cropper = MultiScaleCropper(scales: scales, size: size, allowUpsampling: allowUpsampling)
        try cropper.validate(reader)
        var positions = try grid.positions(slideWidth: reader.levels[0].width, slideHeight: reader.levels[0].height,
                                           slideMicronsPerPixel: reader.micronsPerPixel, mask: slide.mask, path: slide.path)
        if let limit = maximumPerSlide, positions.count > limit {
            positions = (0..<limit).map { positions[$0 * positions.count / limit] }
        }
        context.count("tiles.positions", positions.count)
        if positions.isEmpty {
            context.reportFailure(item: slide.description, reason: "no grid position has tissue ≥ min_tissue \(grid.minimumTissue): nothing to tile (lower `min_tissue`, or check the tissue mask with `ssmamba tissue`)")
        }
        guard let base = reader.micronsPerPixel else { return }
        let frame = grid.frame(slideWidth: reader.levels[0].width, slideHeight: reader.levels[0].height, slideMicronsPerPixel: base)
        for position in positions {
            if context.isStopping { return }
            // Tiles already cached are announced without reading the slide.
            var planned: [Tile] = []
            if let presence {
                let centre = position.centre
                planned = scales.enumerated().map { index, scale in
                    let extent = Double(size) * scale / base
                    var tile = Tile(source: slide.path, column: position.column, row: position.row, scaleIndex: index,
                                    level0X: Int((centre.x - extent / 2).rounded()), level0Y: Int((centre.y - extent / 2).rounded()),
                                    requestedMicronsPerPixel: scale, effectiveMicronsPerPixel: scale, tissueFraction: position.tissueFraction,
                                    label: slide.label, image: RGBImage(width: 0, height: 0, pixels: []))
                    tile.sourceIdentity = slide.fingerprint
                    tile.awaitingCache = true
                    tile.grid = frame
                    (tile.patient, tile.time, tile.event) = (slide.patient, slide.time, slide.event)
                    return tile
                }
                let present = try presence.store.environment.read { txn in
                    try planned.allSatisfy { try txn.get(presence.key($0).bytes) != nil }
                }
                if present {
                    for tile in planned { try context.emit(tile) }
                    continue
                }
            }
            do {
                for var tile in try cropper.crops(reader, at: position, label: slide.label) {
                    tile.sourceIdentity = slide.fingerprint
                    tile.grid = frame
                    (tile.patient, tile.time, tile.event) = (slide.patient, slide.time, slide.event)
                    try context.emit(tile)
                }
            } catch let stopped as FlowStopped {
                throw stopped
            } catch {
                context.reportFailure(item: "\(slide) position (\(position.column), \(position.row))", reason: String(describing: error))
            }
        }
    }
}

/// `decode`: ROI image files into tiles.
struct DecodeStage: Stage {
    let size: Int
    let micronsPerPixel: Double

    func process(_ input: ImageItem, _ context: StageContext<Tile>) throws {
        var image = try ImageFile.read(input.path)
        if size > 0 {
            guard image.width >= size && image.height >= size else {
                throw StageError("\(input.path): the image is \(image.width)×\(image.height), smaller than `size: \(size)`; lower `size` or set it to 0")
            }
            image = Self.centreCrop(image, size)
        }
        var tile = Tile(source: input.path, column: 0, row: 0, scaleIndex: 0, level0X: 0, level0Y: 0,
                        requestedMicronsPerPixel: micronsPerPixel, effectiveMicronsPerPixel: micronsPerPixel, tissueFraction: 1,
                        label: input.label, image: image)
        tile.split = input.split
        tile.sourceIdentity = try Fingerprint.source(path: input.path)
        try context.emit(tile)
    }

    static func centreCrop(_ image: RGBImage, _ size: Int) -> RGBImage {
        guard image.width != size || image.height != size else { return image }
        let left = (image.width - size) / 2, top = (image.height - size) / 2
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            let from = ((top + y) * image.width + left) * 3
            pixels.replaceSubrange(y * size * 3..<(y + 1) * size * 3, with: image.pixels[from..<from + size * 3])
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }
}

/// `stain`: one fitted normalizer for every tile of the run.
struct StainStage: Stage {
    let normalizer: any StainNormalizer

    /// Fits `method` to the image `target`, or loads a saved target (.json) of that method.
    init(method: StainMethod, target: String) throws {
        if target.lowercased().hasSuffix(".json") {
            let saved = try StainTarget.load(from: URL(fileURLWithPath: target))
            // The method is part of the cache's fingerprint: it must say what the pixels went through.
            guard saved.method == method else {
                throw StageError("\(target) is a saved \(saved.method.rawValue) target but the stage says `method: \(method.rawValue)`; set `method: \(saved.method.rawValue)`, or give an image as the target to fit \(method.rawValue)")
            }
            normalizer = try StainNormalization.normalizer(for: saved)
        } else {
            normalizer = try StainNormalization.fit(method, to: ImageFile.read(target))
        }
    }

    func process(_ input: Tile, _ context: StageContext<Tile>) throws {
        guard !input.awaitingCache else { return try context.emit(input) }
        var tile = input
        switch normalizer.normalize(input.image) {
        case .normalized(let image):
            tile.image = image
            context.count("stain.normalized")
        case .passedThrough:
            context.count("stain.passed_through")
        }
        try context.emit(tile)
    }
}
