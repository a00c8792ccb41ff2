extension ConsolidationFormat {
    /// The file `ckpt consolidate` writes when no output is given: `DIR.consolidated` for
    /// torch.save (the name Lightning's `consolidate_checkpoint` uses), `DIR.safetensors` for
    /// safetensors; next to the folder, trailing slashes ignored.
    public func defaultOutput(for directory: String) -> String {
        let base = ToolPaths.normalized(directory)
        switch self {
        case .torchSave: return base + ".consolidated"
        case .safetensors: return base + ".safetensors"
        }
    }
}
