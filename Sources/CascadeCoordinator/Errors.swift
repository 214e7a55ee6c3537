import CascadeAPI
import CascadeRPC
import CascadeStore

extension StoreError {
    /// The status a remote caller gets (StoreError's documented mapping). Internal details
    /// (SQL, file paths) stay in the coordinator's log.
    var rpcError: RPCError {
        switch code {
        case .illegalTransition, .failedPrecondition: RPCError(.failedPrecondition, message)
        case .notFound: RPCError(.notFound, message)
        case .alreadyExists: RPCError(.alreadyExists, message)
        case .invalidArgument: RPCError(.invalidArgument, message)
        case .busy: RPCError(.unavailable, "the coordinator's database is busy; retry")
        case .corrupt: RPCError(.dataLoss, message)
        default: RPCError(.internal, "the coordinator's store failed: \(message)")
        }
    }
}

/// Store and release errors as the RPC status a caller gets; anything else unchanged.
func statusError(_ error: any Error) -> any Error {
    switch error {
    case let error as StoreError: error.rpcError
    case let error as ReleaseError: error.rpcError
    default: error
    }
}

/// Runs a handler body and turns store and release errors into RPC statuses.
func mapped<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch { throw statusError(error) }
}

/// The same for synchronous work (manifest and chunk checks, blob reads).
func mapped<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch { throw statusError(error) }
}
