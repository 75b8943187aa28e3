import Diagnostics
import Flow
import Foundation
import SSMamba
import Slides
import Stages
import Tensors
import TileCache
import Tiling
import XCTest

/// Every module reports its errors in one shape (`Problem`: kind, subject, message, printed as
/// `subject: message`); each error here comes from the real code path a user would hit.
final class ErrorShapeTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("errors-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// The error `body` throws, as a `Problem` of kind `kind` about `subject`.
    func problem(_ kind: String, about subject: String, file: StaticString = #filePath, line: UInt = #line,
                 _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let problem as any Problem {
            XCTAssertEqual(problem.kindName, kind, "\(problem)", file: file, line: line)
            XCTAssertEqual(problem.subject, subject, file: file, line: line)
            XCTAssertFalse(problem.message.isEmpty, file: file, line: line)
            XCTAssertEqual(problem.description, subject.isEmpty ? problem.message : "\(subject): \(problem.message)", file: file, line: line)
        } catch {
            XCTFail("\(type(of: error)) is not a Problem: \(error)", file: file, line: line)
        }
    }

    func testEveryModuleReportsTheOneShape() throws {
        let missing = folder.appendingPathComponent("missing.svs").path
        problem("cannotOpen", about: missing) { _ = try TIFFSlide(path: missing) }

        let notACache = folder.appendingPathComponent("file")
        try Data("not a cache".utf8).write(to: notACache)
        problem("cannotOpen", about: notACache.path) { _ = try TileStore(path: notACache.path, readOnly: true) }

        problem("notSafetensors", about: notACache.path) { _ = try SafeTensorsFile(contentsOf: notACache) }

        problem("unusableTarget", about: "") {
            _ = try StainNormalization.fit(.reinhard, to: RGBImage(width: 16, height: 16, filling: (200, 100, 150)))
        }
        let savedTarget = folder.appendingPathComponent("target.json")
        try Data("{}".utf8).write(to: savedTarget)
        problem("unreadableTarget", about: savedTarget.path) { _ = try StainTarget.load(from: savedTarget) }

        problem("unreadable", about: folder.path) { _ = try Checkpoint.read(from: folder) }
        problem("invalidConfiguration", about: "") { _ = try ModelConfiguration.named("ssmamba_huge") }

        // A step that cannot be built: its place in the flow file, the error it threw kept inside.
        let flow = """
            flow: errors
            output: \(folder.appendingPathComponent("run").path)
            source: {kind: cached_tiles, path: \(notACache.path)}
            stages:
              - stage: pretrain
            """
        let path = folder.appendingPathComponent("flow.yaml").path
        try flow.write(toFile: path, atomically: true, encoding: .utf8)
        problem("invalidInput", about: "\(path):3:9") { _ = try FlowAssembler.build(try FlowRunner.load(path), runFolder: folder) }
    }
}
