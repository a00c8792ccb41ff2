import Foundation

extension BenchReport {
    /// The report as pretty-printed JSON with sorted keys (stable across runs for diffing).
    /// Non-finite numbers are written as the strings `"inf"`, `"-inf"`, `"nan"`.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }

    /// Decodes a report written by ``jsonData()``.
    public static func decode(jsonData data: Data) throws -> BenchReport {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(BenchReport.self, from: data)
    }
}
