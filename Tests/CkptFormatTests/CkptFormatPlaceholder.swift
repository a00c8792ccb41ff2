import Testing
@testable import CkptFormat

@Test func placeholder() {}
