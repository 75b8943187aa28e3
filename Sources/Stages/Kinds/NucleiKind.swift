import Foundation
import Flow
import Tiling

/// `nuclei`: one labelled patch per nucleus of an annotated image.
enum NucleiKind: StageKind {
    static let name = "nuclei"
    static let doc = "One patch per nucleus from an H&E image with instance and type masks (.npy/.npz, PanNuke/CoNSeP/Lizard style), labelled by type; split train/validation/test by whole image regions, so overlapping patches never cross splits."
    static let parameters = [
        ParameterSpec("image", .path(mustExist: true), "the H&E image"),
        ParameterSpec("instances", .path(mustExist: true), "instance mask (.npy or .npz; 0 = background, one id per nucleus)"),
        ParameterSpec("types", .path(mustExist: true), "type mask (.npy or .npz; 0 = background, 1…K = nucleus classes)"),
        ParameterSpec("patch", .integer(8...512), default: "64", "patch size in pixels, centred on each nucleus"),
        ParameterSpec("class_names", .text, default: "\"type1,type2,type3\"", "names of types 1…K, comma separated"),
        ParameterSpec("regions", .integer(2...32), default: "4", "the image is cut into regions × regions blocks for the split"),
        ParameterSpec("validation_regions", .integer(1...1000), default: "3", "blocks that go to validation"),
        ParameterSpec("test_regions", .integer(1...1000), default: "3", "blocks that go to test"),
    ]

    struct Parameters: Decodable {
        var image: String
        var instances: String
        var types: String
        var patch: Int
        var classNames: String
        var regions: Int
        var validationRegions: Int
        var testRegions: Int
    }

    static func make(_ p: Parameters, _ step: StepAssembly) throws -> Built<Never, Tile> {
        let result = try NucleusPatches.extract(
            image: p.image, instances: p.instances, types: p.types, patch: p.patch, regions: p.regions,
            classNames: p.classNames.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
            validationRegions: p.validationRegions, testRegions: p.testRegions, seed: UInt64(step.seed))
        let name = step.name
        return .source { context in
            context.count("\(name).dropped_on_region_borders", result.droppedOnBorders)
            for tile in result.tiles { try context.emit(tile) }
        }
    }
}
