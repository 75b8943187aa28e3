import ArgumentParser
import Foundation
import Slides
import Tiling

/// `ssmamba stain --method M --target T IMAGE... --out DIR`.
struct StainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stain",
        abstract: "Stain-normalize images to a target (Macenko, Reinhard or Vahadane); the fitted target can be saved and reused.")

    @Option(help: "macenko, reinhard or vahadane (default: macenko, or a saved target's method).") var method: String?
    @Option(help: "The target image (H&E with tissue), or a saved target (.json).") var target: String
    @Argument(help: "Images to normalize (PNG, JPEG, TIFF).") var images: [String] = []
    @Option(help: "Output folder (PNG files named after the inputs); needed with images.") var out: String?
    @Option(name: .customLong("save-target"), help: "Write the fitted target to this JSON file.") var saveTarget: String?

    func run() throws {
        let chosen = try method.map { name in
            guard let method = StainMethod(rawValue: name) else {
                throw ValidationError("--method must be one of \(StainMethod.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return method
        }
        guard !images.isEmpty || saveTarget != nil else { throw ValidationError("give images to normalize, or --save-target") }
        guard images.isEmpty || out != nil else { throw ValidationError("--out is needed with images") }
        do {
            let normalizer: any StainNormalizer
            if target.lowercased().hasSuffix(".json") {
                let saved = try StainTarget.load(from: URL(fileURLWithPath: target))
                if let chosen, chosen != saved.method {
                    throw CommandFailure("\(target) is a saved \(saved.method.rawValue) target, not \(chosen.rawValue); drop --method (or give --method \(saved.method.rawValue)), or give an image as --target to fit \(chosen.rawValue)")
                }
                normalizer = try StainNormalization.normalizer(for: saved)
            } else {
                normalizer = try StainNormalization.fit(chosen ?? .macenko, to: ImageFile.read(target))
            }
            if let saveTarget { try normalizer.target.save(to: URL(fileURLWithPath: saveTarget)) }
            if let out {
                let folder = URL(fileURLWithPath: out)
                try CommandFailure.makeOutputFolder(folder)
                var passed = 0
                let started = Date()
                let progress = CommandProgress(total: images.count, label: "stain")
                defer { progress.finish() }
                for path in images {
                    defer { progress.advance() }
                    let result = normalizer.normalize(try ImageFile.read(path))
                    if case .passedThrough(_, let reason) = result {
                        passed += 1
                        FileHandle.standardError.write(Data("\(path): passed through unchanged (\(reason))\n".utf8))
                    }
                    let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension + ".png"
                    try PNGWriter.write(result.image, to: folder.appendingPathComponent(name))
                }
                print(String(format: "%@: %d images normalized to %@ (%d passed through unchanged) in %.2f s",
                             normalizer.target.method.rawValue, images.count - passed, out, passed, Date().timeIntervalSince(started)))
            }
            if let saveTarget { print("target saved to \(saveTarget)") }
        } catch let error as SlideError {
            throw CommandFailure(error.description)
        } catch let error as StainError {
            throw CommandFailure(error.description)
        }
    }
}
