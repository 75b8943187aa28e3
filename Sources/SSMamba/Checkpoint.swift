import Diagnostics
import Foundation
import Tensors

/// A checkpoint is a directory:
///
///     model.safetensors       parameters under PyTorch-style names (loadable by `safetensors.torch`)
///     optimizer.safetensors   AdamW moments `m.NAME`, `v.NAME` (training checkpoints only)
///     checkpoint.json         format version, model configuration, training settings and state
///
/// It is written into a temporary sibling directory and renamed into place, so a crash leaves
/// either the old checkpoint or the new one, never a mixture.
public struct Checkpoint {
    public struct Manifest: Codable, Sendable {
        public var format = "ssmamba-checkpoint"
        public var version = 1
        public var model: ModelConfiguration
        public var training: TrainingSettings?
        public var optimizerStep: Int?
        public var microStep: Int?
        /// The trainer's random generator, as hex words (JSON numbers cannot hold 64 bits).
        public var randomState: [String]?
        /// Free-form facts (e.g. the validation metric of a best checkpoint).
        public var notes: [String: String] = [:]

        public init(model: ModelConfiguration, notes: [String: String] = [:]) {
            self.model = model
            self.notes = notes
        }
    }

    public var manifest: Manifest
    public var weights: SafeTensorsFile
    public var optimizer: SafeTensorsFile?

    public init(manifest: Manifest, weights: SafeTensorsFile, optimizer: SafeTensorsFile? = nil) {
        (self.manifest, self.weights, self.optimizer) = (manifest, weights, optimizer)
    }

    public func write(to directory: URL) throws {
        let fm = FileManager.default
        let parent = directory.deletingLastPathComponent()
        let temporary = parent.appendingPathComponent(".\(directory.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
            try? fm.removeItem(at: temporary)
            try fm.createDirectory(at: temporary, withIntermediateDirectories: false)
            try weights.write(to: temporary.appendingPathComponent("model.safetensors"))
            try optimizer?.write(to: temporary.appendingPathComponent("optimizer.safetensors"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(manifest).write(to: temporary.appendingPathComponent("checkpoint.json"))
            if fm.fileExists(atPath: directory.path) {
                let old = parent.appendingPathComponent(".\(directory.lastPathComponent).old-\(ProcessInfo.processInfo.processIdentifier)")
                try? fm.removeItem(at: old)
                try fm.moveItem(at: directory, to: old)
                try fm.moveItem(at: temporary, to: directory)
                try? fm.removeItem(at: old)
            } else {
                try fm.moveItem(at: temporary, to: directory)
            }
        } catch {
            try? fm.removeItem(at: temporary)
            throw CheckpointError(.cannotWrite, directory.path, "cannot write the checkpoint (\(error)); check free space and permissions")
        }
    }

    public static func read(from directory: URL) throws -> Checkpoint {
        let manifest = try readManifest(from: directory)
        let weights = try SafeTensorsFile(contentsOf: directory.appendingPathComponent("model.safetensors"))
        let optimizerURL = directory.appendingPathComponent("optimizer.safetensors")
        let optimizer = FileManager.default.fileExists(atPath: optimizerURL.path) ? try SafeTensorsFile(contentsOf: optimizerURL) : nil
        return Checkpoint(manifest: manifest, weights: weights, optimizer: optimizer)
    }

    /// The manifest alone (configuration, settings, notes), without reading the weights.
    public static func readManifest(from directory: URL) throws -> Manifest {
        let manifestURL = directory.appendingPathComponent("checkpoint.json")
        guard let data = try? Data(contentsOf: manifestURL) else {
            throw CheckpointError(.unreadable, directory.path, "not a checkpoint (no readable checkpoint.json)")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw CheckpointError(.unreadable, manifestURL.path, "not a valid checkpoint manifest (\(error))")
        }
        guard manifest.format == "ssmamba-checkpoint", manifest.version == 1 else {
            throw CheckpointError(.unsupported, manifestURL.path, "format \(manifest.format) v\(manifest.version) is not supported (expected ssmamba-checkpoint v1)")
        }
        return manifest
    }
}

/// A checkpoint that cannot be written, read, or used for what it is asked.
public struct CheckpointError: Problem {
    public enum Kind: String, Sendable { case cannotWrite, unreadable, unsupported, cannotResume }
    public let kind: Kind
    /// The checkpoint folder or file.
    public let subject: String
    public let message: String
    public var kindName: String { kind.rawValue }

    public init(_ kind: Kind, _ subject: String, _ message: String) {
        (self.kind, self.subject, self.message) = (kind, subject, message)
    }
}
