import Diagnostics
import Tensors

/// A problem loading weights, naming the file and the parameters involved.
public struct WeightLoadingError: Problem {
    /// The weights file.
    public let subject: String
    public let message: String
    public var kindName: String { "weightsDoNotFit" }
}

extension ParameterOwner {
    /// The parameters as a safetensors file under their PyTorch-style names (`prefix` + name).
    public func stateDictionary(prefix: String = "", as dtype: SafeTensorsDType = .float32) -> SafeTensorsFile {
        var file = SafeTensorsFile()
        for p in parameters { file.set(prefix + p.name, p.value, as: dtype) }
        return file
    }

    /// Loads every parameter from `file` (entries named `prefix` + name). Strict: a missing name, an
    /// unexpected `prefix` entry or a shape mismatch is an error listing them, and nothing is changed.
    public func loadStateDictionary(_ file: SafeTensorsFile, prefix: String = "", source: String) throws {
        var loaded: [(Parameter, Tensor)] = []
        var problems: [String] = []
        let known = Set(parameters.map { prefix + $0.name })
        for p in parameters {
            guard file.entries[prefix + p.name] != nil else { problems.append("missing \(prefix + p.name)"); continue }
            let value = try file.tensor(prefix + p.name)
            guard value.shape == p.value.shape else {
                problems.append("\(prefix + p.name) has shape \(value.shape), the model expects \(p.value.shape)")
                continue
            }
            loaded.append((p, value))
        }
        let unexpected = file.entries.keys.filter { $0.hasPrefix(prefix) && !known.contains($0) }.sorted()
        problems += unexpected.map { "unexpected \($0)" }
        guard problems.isEmpty else {
            let shown = problems.prefix(10).joined(separator: "; ")
            throw WeightLoadingError(subject: source, message: "weights do not fit this model (\(problems.count) problem(s)): \(shown)"
                                     + (problems.count > 10 ? "; …" : "") + ". Check that the model configuration matches the checkpoint's.")
        }
        for (p, value) in loaded { p.value = value }
    }
}
