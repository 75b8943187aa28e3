import Foundation
import Slides
import Tiling

/// A slide entering a flow, with its labels (from the labels CSV) and, after the tissue stage,
/// its tissue mask.
public struct SlideItem: Sendable, CustomStringConvertible {
    public let path: String
    public let reader: any SlideReader
    /// Cache identity of the file (path, size, modification time).
    public let fingerprint: UInt64
    public var label: String?
    public var patient: String?
    /// Survival: follow-up time and whether the event was observed.
    public var time: Double?
    public var event: Bool?
    public var mask: TissueMask?
    /// The regions to tile (QuPath annotations), when the slides source names an annotations folder.
    public var annotations: [Annotation]?

    public var description: String { (path as NSString).lastPathComponent }
}

/// A region-of-interest image file entering a flow (class folders or a CSV of images).
public struct ImageItem: Sendable, CustomStringConvertible {
    public let path: String
    public var label: String?
    /// train / validation / test, when the dataset says.
    public var split: String?
    public var description: String { path }
}
