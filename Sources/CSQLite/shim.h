#ifndef CASCADE_CSQLITE_SHIM_H
#define CASCADE_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
