import CascadeMetrics
import Testing

@Suite("Exposition")
struct ExpositionTests {}
