import CascadeCoordinator
import Foundation

exit(await CoordinatorCommand.program.main())
