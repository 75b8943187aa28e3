import Diagnostics
import Foundation
import Slides
import Tensors

/// The stain normalization methods.
public enum StainMethod: String, Codable, Sendable, CaseIterable {
    case macenko, reinhard, vahadane
}

/// The result of normalizing one tile.
public enum StainResult: Sendable {
    case normalized(RGBImage)
    /// The stain estimate is undefined for this tile (background, too little tissue): the tile is
    /// returned unchanged, with the reason; runs count these.
    case passedThrough(RGBImage, reason: String)

    public var image: RGBImage {
        switch self {
        case .normalized(let image), .passedThrough(let image, _): return image
        }
    }
}

/// What a normalizer learned from its target: saved once so every tile of a run uses the same
/// target. Reinhard keeps LAB means and standard deviations; Macenko and Vahadane keep the stain
/// matrix (rows: haematoxylin, eosin; columns: optical density of R, G, B) and the 99th-percentile
/// stain concentrations.
public struct StainTarget: Codable, Sendable, Equatable {
    public var method: StainMethod
    public var labMeans: [Double]?
    public var labStandardDeviations: [Double]?
    public var stainMatrix: [[Double]]?
    public var maximumConcentrations: [Double]?

    /// Writes the target as JSON (atomically).
    public func save(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    public static func load(from url: URL) throws -> StainTarget {
        do {
            // snake_case keys; targets saved before (camelCase, no underscores) read the same way.
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try decoder.decode(StainTarget.self, from: Data(contentsOf: url))
        } catch {
            throw StainError(.unreadableTarget, url.path, "not a saved stain target (\(error)); write one with `ssmamba stain --save-target`")
        }
    }
}

/// A stain normalization failure: a target without stain to learn from, or a saved target that
/// cannot be read.
public struct StainError: Problem {
    public enum Kind: String, Sendable { case unusableTarget, unreadableTarget }
    public let kind: Kind
    public let subject: String
    public let message: String
    public var kindName: String { kind.rawValue }

    public init(_ kind: Kind, _ subject: String = "", _ message: String) {
        (self.kind, self.subject, self.message) = (kind, subject, message)
    }
}

/// A fitted normalizer: maps any tile to the target's stain appearance.
public protocol StainNormalizer: Sendable {
    var target: StainTarget { get }
    /// Never fails and never produces NaN: tiles without a defined estimate pass through.
    func normalize(_ tile: RGBImage) -> StainResult
}

/// Making normalizers from a target image or a saved target.
public enum StainNormalization {
    /// Fits `method` to `image`.
    /// - Throws: `StainError` when the image has no usable stain (e.g. a blank target).
    public static func fit(_ method: StainMethod, to image: RGBImage) throws -> any StainNormalizer {
        switch method {
        case .reinhard: return try ReinhardNormalizer(fittedTo: image)
        case .macenko: return try MacenkoNormalizer(fittedTo: image)
        case .vahadane: return try VahadaneNormalizer(fittedTo: image)
        }
    }

    /// A normalizer from a saved target.
    public static func normalizer(for target: StainTarget) throws -> any StainNormalizer {
        switch target.method {
        case .reinhard: return try ReinhardNormalizer(target: target)
        case .macenko: return try MacenkoNormalizer(target: target)
        case .vahadane: return try VahadaneNormalizer(target: target)
        }
    }
}
