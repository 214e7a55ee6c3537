import CascadeAgent
#if canImport(Glibc)
import Glibc
#endif

exit(AgentCommandLine.main(Array(CommandLine.arguments.dropFirst())))
