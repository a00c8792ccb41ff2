import Testing
@testable import CkptIO

@Test func placeholder() {}
