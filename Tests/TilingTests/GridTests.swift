import Foundation
import Slides
import Tiling
import XCTest

final class GridTests: XCTestCase {
    func testGridPositionsStrideAndTissueFilter() throws {
        // A 1000×600 level-0 slide at 0.25 µm/px; tiles of 100 px at 0.5 µm/px cover 200 level-0 px.
        let mask = TissueMask(width: 10, height: 6, downsample: 100, micronsPerPixel: 25,
                              pixels: (0..<60).map { UInt8($0 % 10 < 5 ? 1 : 0) })  // left half tissue
        let all = try TileGrid(micronsPerPixel: 0.5, size: 100, minimumTissue: 0)
            .positions(slideWidth: 1000, slideHeight: 600, slideMicronsPerPixel: 0.25, mask: mask, path: "s")
        XCTAssertEqual(all.count, 5 * 3)
        XCTAssertEqual(all[1].level0X, 200)
        XCTAssertEqual(all[1].level0Width, 200)
        let overlapping = try TileGrid(micronsPerPixel: 0.5, size: 100, stride: 50, minimumTissue: 0)
            .positions(slideWidth: 1000, slideHeight: 600, slideMicronsPerPixel: 0.25, mask: mask, path: "s")
        XCTAssertEqual(overlapping.count, 9 * 5)
        let tissue = try TileGrid(micronsPerPixel: 0.5, size: 100, minimumTissue: 0.5)
            .positions(slideWidth: 1000, slideHeight: 600, slideMicronsPerPixel: 0.25, mask: mask, path: "s")
        XCTAssertEqual(tissue.map(\.column), [0, 1, 2, 0, 1, 2, 0, 1, 2])  // the tile at 400…600 is half tissue
        XCTAssertEqual(tissue[2].tissueFraction, 0.5, accuracy: 1e-9)
        XCTAssertThrowsError(try TileGrid(micronsPerPixel: 0.5, size: 100)
            .positions(slideWidth: 1000, slideHeight: 600, slideMicronsPerPixel: nil, mask: nil, path: "x.svs")) { error in
            XCTAssertTrue("\(error)".contains("mpp_override"), "\(error)")
        }
    }

    func testMultiScaleCropsShareTheirCentre() throws {
        let slide = SyntheticSlide(width: 2048, height: 2048) { x, y in (x / 64 + y / 64) % 2 == 0 }
        let url = try slide.write(micronsPerPixel: 0.25)
        defer { try? FileManager.default.removeItem(at: url) }
        let reader = try TIFFSlide(path: url.path)
        let cropper = MultiScaleCropper(scales: [0.25, 0.5, 1.0, 2.0], size: 64)
        try cropper.validate(reader)
        let position = TilePosition(column: 3, row: 4, level0X: 900, level0Y: 1000, level0Width: 128, level0Height: 128, tissueFraction: 1)
        let tiles = try cropper.crops(reader, at: position, label: "tumour")
        XCTAssertEqual(tiles.map(\.requestedMicronsPerPixel), [0.25, 0.5, 1.0, 2.0])
        for tile in tiles {
            XCTAssertEqual(tile.image.width, 64)
            XCTAssertEqual(tile.effectiveMicronsPerPixel, tile.requestedMicronsPerPixel, accuracy: 1e-9)
            let extent = 64 * tile.requestedMicronsPerPixel / 0.25
            XCTAssertEqual(Double(tile.level0X) + extent / 2, 964, accuracy: 1)  // same centre
            XCTAssertEqual(tile.label, "tumour")
        }
        // The finest crop equals level-0 pixels read directly.
        let direct = try reader.readRegion(level0Origin: (tiles[0].level0X, tiles[0].level0Y), size: (64, 64), level: 0)
        XCTAssertEqual(tiles[0].image, direct)
        // Finer than level 0: an error, unless upsampling is allowed.
        XCTAssertThrowsError(try MultiScaleCropper(scales: [0.125, 0.5], size: 64).validate(reader)) { error in
            XCTAssertTrue("\(error)".contains("upsampled fake"), "\(error)")
        }
        let upsampled = try MultiScaleCropper(scales: [0.125], size: 64, allowUpsampling: true).crops(reader, at: position)
        XCTAssertEqual(upsampled[0].image.width, 64)
    }
}
