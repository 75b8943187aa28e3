import Flow
import Foundation
import Slides
import Tiling

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
