/// Overflow-checked arithmetic on shapes and boxes. Everything here is pure.
enum BoxMath {
    /// Product of `sizes` (1 for none), `nil` on a negative factor or overflow.
    static func volume(_ sizes: [Int]) -> Int? {
        var product = 1
        for size in sizes {
            guard size >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow else { return nil }
            product = next
        }
        return product
    }

    /// `volume(sizes) * elementSize`, `nil` on overflow or negative input.
    static func byteCount(_ sizes: [Int], elementSize: Int) -> Int? {
        guard elementSize >= 0, let volume = volume(sizes) else { return nil }
        let (bytes, overflow) = volume.multipliedReportingOverflow(by: elementSize)
        return overflow ? nil : bytes
    }

    /// Row-major (C-contiguous) element strides of a block of the given sizes.
    /// Callers guarantee the volume does not overflow, so neither does any partial product.
    static func strides(_ sizes: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: sizes.count)
        var running = 1
        var dim = sizes.count - 1
        while dim >= 0 {
            strides[dim] = running
            running &*= sizes[dim]
            dim -= 1
        }
        return strides
    }

    /// DCP's overlap rule (`_check_box_overlap`): boxes overlap iff on every dimension each starts
    /// before the other ends. 0-size boxes never overlap; 0-d boxes always overlap.
    static func overlaps(_ a: ChunkBox, _ b: ChunkBox) -> Bool {
        for dim in 0..<a.sizes.count {
            if a.offsets[dim] >= b.offsets[dim] &+ b.sizes[dim] { return false }
            if b.offsets[dim] >= a.offsets[dim] &+ a.sizes[dim] { return false }
        }
        return true
    }

    /// Why `box` is not a valid chunk of a tensor of shape `shape`, or `nil` if it is.
    static func boundsProblem(_ box: ChunkBox, inShape shape: [Int]) -> String? {
        guard box.offsets.count == shape.count, box.sizes.count == shape.count else {
            return "has \(box.offsets.count) offsets and \(box.sizes.count) sizes for a \(shape.count)-d tensor"
        }
        for dim in 0..<shape.count {
            if box.offsets[dim] < 0 { return "offset \(box.offsets[dim]) < 0 on dim \(dim)" }
            if box.sizes[dim] < 0 { return "size \(box.sizes[dim]) < 0 on dim \(dim)" }
            let (end, overflow) = box.offsets[dim].addingReportingOverflow(box.sizes[dim])
            if overflow || end > shape[dim] {
                return "ends past the tensor extent \(shape[dim]) on dim \(dim)"
            }
        }
        return nil
    }

    /// Why `shape` is not a valid tensor shape for `elementSize`, or `nil` if it is.
    static func shapeProblem(_ shape: [Int], elementSize: Int) -> String? {
        if let bad = shape.first(where: { $0 < 0 }) { return "negative extent \(bad)" }
        if elementSize <= 0 { return "element size \(elementSize) is not positive" }
        if byteCount(shape, elementSize: elementSize) == nil { return "byte size overflows" }
        return nil
    }
}
