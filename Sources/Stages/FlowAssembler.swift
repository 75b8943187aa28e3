import Flow
import Foundation
import Slides
import TileCache
import Tiling

/// Turns a validated flow file into a runnable graph.
public enum FlowAssembler {
    /// A type-erased edge: the item type's name in the catalog and the typed edge.
    struct AnyEdge {
        let type: String
        let edge: Any
        let fanOut: (FlowGraph, String, Int) -> [AnyEdge]
        let merge: (FlowGraph, String, [AnyEdge]) -> AnyEdge
        let drop: (FlowGraph, String) -> Void

        init<T: Sendable>(_ edge: Edge<T>, type: String) {
            self.type = type
            self.edge = edge
            fanOut = { graph, name, count in graph.fanOut(name, edge, into: count).map { AnyEdge($0, type: type) } }
            merge = { graph, name, edges in
                // The flow file's type check guarantees every merged edge carries the same type.
                AnyEdge(graph.merge(name, edges.map { $0.edge as! Edge<T> }), type: type)
            }
            drop = { graph, name in graph.sink(name, ClosureStage<T, Never> { _, _ in }, from: edge) }
        }

        func typed<T>(_: T.Type) -> Edge<T> { edge as! Edge<T> }
    }

    /// Builds the graph of `flow`, writing run outputs under `runFolder`. Work that can fail on
    /// user data before anything runs (opening the cache, fitting the stain target, listing
    /// slides) fails here, naming the step and its line in the flow file. With `resume`, training
    /// stages continue from their `last` checkpoint in `runFolder`.
    public static func build(_ flow: FlowFile, runFolder: URL, resume: Bool = false) throws -> FlowGraph {
        let graph = FlowGraph(name: flow.name)
        let steps = flow.sources + flow.stages
        var readers: [String: Int] = [:]
        for step in steps { for from in step.from { readers[from, default: 0] += 1 } }
        var outputs: [String: [AnyEdge]] = [:]  // one edge per reader, handed out in order
        var tilesStages: [String: TilesStage] = [:]
        let artifacts = Artifacts()
        let kinds = Dictionary(steps.map { ($0.name, $0.kind.name) }, uniquingKeysWith: { a, _ in a })
        /// A step of this flow of one of `allowed` kinds, or an existing checkpoint folder.
        func checkpoint(_ reference: String, from allowed: [String]) throws -> CheckpointSource {
            if let kind = kinds[reference] {
                guard allowed.contains(kind) else {
                    throw StageError("'\(reference)' is a `\(kind)` step; a checkpoint comes from a \(allowed.map { "`\($0)`" }.joined(separator: " or ")) step or a checkpoint folder")
                }
                return .step(reference)
            }
            guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: reference).appendingPathComponent("checkpoint.json").path) else {
                throw StageError("'\(reference)' is neither a \(allowed.map { "`\($0)`" }.joined(separator: " or ")) step of this flow nor a checkpoint folder (one holding checkpoint.json)")
            }
            return .folder(URL(fileURLWithPath: reference))
        }

        func take(_ name: String) -> AnyEdge { outputs[name]!.removeFirst() }
        func publish(_ step: FlowStep, _ edge: AnyEdge?) {
            guard let edge else { return }
            let count = readers[step.name] ?? 0
            if count == 0 {
                edge.drop(graph, "\(step.name).out")
            } else if count == 1 {
                outputs[step.name] = [edge]
            } else {
                outputs[step.name] = edge.fanOut(graph, "\(step.name).fan-out", count)
            }
        }
        for step in steps {
            do {
                let p = step.parameters
                var input: AnyEdge?
                if !step.from.isEmpty {
                    let edges = step.from.map(take)
                    input = edges.count == 1 ? edges[0] : edges[0].merge(graph, "\(step.name).merge", edges)
                }
                let edge: AnyEdge?
                func add<S: Stage>(_ stage: S, type: String) -> AnyEdge {
                    AnyEdge(graph.add(step.name, stage, from: input!.typed(S.Input.self), workers: step.workers, ordered: true,
                                      onError: step.onError), type: type)
                }
                switch step.kind.name {
                case "slides":
                    let listing = try SlideListing(parameters: p)
                    edge = AnyEdge(graph.source(step.name, onError: step.onError,
                                                produce: Sources.slides(listing, micronsPerPixelOverride: p.optionalNumber("mpp_override"))), type: "slide")
                case "roi_folder", "image_csv":
                    let items = step.kind.name == "roi_folder" ? try Sources.roiFolder(p) : try Sources.imageCSV(p)
                    edge = AnyEdge(graph.source(step.name, onError: step.onError) { (context: StageContext<ImageItem>) in
                        for item in items { try context.emit(item) }
                    }, type: "image")
                case "cached_tiles":
                    edge = AnyEdge(graph.source(step.name, onError: step.onError, produce: try Sources.cachedTiles(p)), type: "tile")
                case "tissue":
                    edge = add(TissueStage(p, runFolder: runFolder), type: "slide")
                case "tiles":
                    let stage = TilesStage(p)
                    tilesStages[step.name] = stage
                    edge = add(stage, type: "tile")
                case "decode":
                    edge = add(DecodeStage(p), type: "tile")
                case "stain":
                    edge = add(try StainStage(p), type: "tile")
                case "cache":
                    let store = try TileStore(path: p.text("path"), codec: p.text("compression") == "none" ? .none : .zstd)
                    let chain = upstream(of: step, in: steps)
                    let presence = CachePresence(store: store, parameters: try parameterFingerprint(chain))
                    // Pixels of cached tiles are read for readers that use them; training stages stream their own.
                    let readerKinds = steps.filter { $0.from.contains(step.name) }.map(\.kind.name)
                    let readsPixels = readerKinds.contains { !Catalog.streamingKinds.contains($0) }
                    // Let the tiles stage skip reading what is cached when only deterministic stages lie between.
                    if let tiles = chain.first(where: { $0.kind.name == "tiles" }),
                       chain.prefix(while: { $0.name != tiles.name }).allSatisfy({ ["stain"].contains($0.kind.name) }) {
                        tilesStages[tiles.name]?.presence = presence
                    }
                    edge = add(CacheStage(presence: presence, batchSize: p.integer("batch"), readsPixels: readsPixels), type: "tile")
                case "nuclei":
                    let result = try NucleusPatches.extract(
                        image: p.text("image"), instances: p.text("instances"), types: p.text("types"), patch: p.integer("patch"),
                        regions: p.integer("regions"), classNames: p.text("class_names").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
                        validationRegions: p.integer("validation_regions"), testRegions: p.integer("test_regions"), seed: UInt64(flow.seed))
                    let name = step.name
                    edge = AnyEdge(graph.source(step.name, onError: step.onError) { (context: StageContext<Tile>) in
                        context.count("\(name).dropped_on_region_borders", result.droppedOnBorders)
                        for tile in result.tiles { try context.emit(tile) }
                    }, type: "tile")
                case "pretrain":
                    graph.sink(step.name, try PretrainStage(name: step.name, p, seed: flow.seed, runFolder: runFolder, artifacts: artifacts, resume: resume),
                               from: input!.typed(Tile.self), onError: step.onError)
                    edge = nil
                case "finetune":
                    let start = try p.optionalText("init").flatMap { $0 == "scratch" ? nil : try checkpoint($0, from: ["pretrain"]) }
                    graph.sink(step.name, try FinetuneStage(name: step.name, p, initFrom: start, seed: flow.seed, runFolder: runFolder, artifacts: artifacts, resume: resume),
                               from: input!.typed(Tile.self), onError: step.onError)
                    edge = nil
                case "evaluate_slides":
                    let model = try checkpoint(p.text("checkpoint"), from: ["finetune"])
                    graph.sink(step.name, try EvaluateSlidesStage(name: step.name, p, checkpoint: model, runFolder: runFolder, artifacts: artifacts),
                               from: input!.typed(Tile.self), workers: step.workers, onError: step.onError)
                    edge = nil
                case "slide_mil":
                    let encoder = try checkpoint(p.text("checkpoint"), from: ["pretrain", "finetune"])
                    graph.sink(step.name, try SlideMILStage(name: step.name, p, checkpoint: encoder, seed: flow.seed, runFolder: runFolder, artifacts: artifacts),
                               from: input!.typed(Tile.self), workers: step.workers, onError: step.onError)
                    edge = nil
                case "export":
                    let folder = p.text("folder")
                    let stage = try ExportStage(folder: folder.hasPrefix("/") ? URL(fileURLWithPath: folder) : runFolder.appendingPathComponent(folder),
                                                jpegQuality: p.text("format") == "jpeg" ? p.integer("quality") : nil)
                    graph.sink(step.name, stage, from: input!.typed(Tile.self), workers: step.workers, onError: step.onError)
                    edge = nil
                default:
                    throw StageError("the stage kind '\(step.kind.name)' is in the catalog but not built (a bug: please report it)")
                }
                publish(step, edge)
            } catch {
                // Name the step and its place in the flow file.
                throw StageError("\(step.location): \(step.kind.name == step.name ? "" : "'\(step.name)' ")(\(step.kind.name)): \(error)")
            }
        }
        return graph
    }

    /// The steps before `step`, nearest first, following the first `from` at each step.
    static func upstream(of step: FlowStep, in steps: [FlowStep]) -> [FlowStep] {
        var chain: [FlowStep] = []
        var current = step
        while let name = current.from.first, let previous = steps.first(where: { $0.name == name }) {
            chain.append(previous)
            current = previous
        }
        return chain
    }

    /// The fingerprint of every parameter that shapes a cached tile: the parameters of the
    /// deterministic steps before the cache (and the stain target file's identity), not the
    /// source's location, labels or shard, nor workers and error policies.
    static func parameterFingerprint(_ chain: [FlowStep]) throws -> UInt64 {
        var values: [String: String] = [:]
        let ignored: Set<String> = ["path", "pattern", "labels", "shard", "save_masks", "max_per_slide"]
        for step in chain {
            for (name, value) in step.parameters.values where !ignored.contains(name) || step.kind.name == "stain" {
                values["\(step.kind.name).\(name)"] = value.canonicalText
            }
            if step.kind.name == "stain" {
                values["stain.target.identity"] = String(try Fingerprint.source(path: step.parameters.text("target")))
            }
        }
        return Fingerprint.parameters(values)
    }
}
