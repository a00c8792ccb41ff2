import Testing
@testable import CkptBench

@Test func placeholder() {}
