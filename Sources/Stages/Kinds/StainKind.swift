import Flow
import TileCache
import Tiling

/// `stain`: stain normalization of every tile to one target.
enum StainKind: StageKind {
    static let name = "stain"
    static let doc = "Stain normalization to one target for the whole run; background tiles pass through unchanged and are counted (`stain.passed_through`)."
    static let parameters = [
        ParameterSpec("method", .choice(StainMethod.allCases.map(\.rawValue)), default: "macenko", "macenko, reinhard or vahadane"),
        ParameterSpec("target", .path(mustExist: true), "target H&E image, or a saved target (.json from `ssmamba stain --save-target`)"),
    ]

    struct Parameters: Decodable {
        var method: StainMethod
        var target: String
    }

    /// The target file's identity: a refitted or replaced target makes other pixels.
    static func cacheIdentity(_ p: Parameters) throws -> [String: String] {
        ["target.identity": String(try Fingerprint.source(path: p.target))]
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Tile, Tile> {
        .stage(try StainStage(method: p.method, target: p.target))
    }
}
