import CascadeUpgrader
#if canImport(Glibc)
import Glibc
#endif

exit(UpgraderCommandLine.main(Array(CommandLine.arguments.dropFirst())))
