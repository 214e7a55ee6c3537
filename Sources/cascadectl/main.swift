import CascadeCtl
#if canImport(Glibc)
import Glibc
#endif

exit(await CascadeCtl.program.main())
