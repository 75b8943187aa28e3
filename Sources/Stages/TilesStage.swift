import Flow
import Foundation
import Slides
import TileCache
import Tiling

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
        let all = try grid.positions(slideWidth: reader.levels[0].width, slideHeight: reader.levels[0].height,
                                     slideMicronsPerPixel: reader.micronsPerPixel, mask: slide.mask, path: slide.path)
        // Each position with its label: the slide's, or with annotations only positions centred
        // inside one, labelled by its class.
        var positions: [(position: TilePosition, label: String?)] = all.map { ($0, slide.label) }
        if let annotations = slide.annotations {
            positions = all.compactMap { position in
                let centre = position.centre
                return annotations.first(where: { $0.contains(x: centre.x, y: centre.y) }).map { (position, $0.classification ?? slide.label) }
            }
            context.count("tiles.outside_annotations", all.count - positions.count)
        }
        if let limit = maximumPerSlide, positions.count > limit {  // evenly spaced
            positions = (0..<limit).map { positions[$0 * positions.count / limit] }
        }
        context.count("tiles.positions", positions.count)
        if positions.isEmpty {
            context.reportFailure(item: slide.description, reason: slide.annotations == nil
                ? "no grid position has tissue ≥ min_tissue \(grid.minimumTissue): nothing to tile (lower `min_tissue`, or check the tissue mask with `ssmamba tissue`)"
                : "no grid position with tissue ≥ min_tissue \(grid.minimumTissue) is centred inside an annotation: nothing to tile (check that the GeoJSON is in level-0 pixels of this slide)")
        }
        guard let base = reader.micronsPerPixel else { return }
        let frame = grid.frame(slideWidth: reader.levels[0].width, slideHeight: reader.levels[0].height, slideMicronsPerPixel: base)
        for (position, label) in positions {
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
                                    label: label, image: RGBImage(width: 0, height: 0, pixels: []))
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
                for var tile in try cropper.crops(reader, at: position, label: label) {
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
