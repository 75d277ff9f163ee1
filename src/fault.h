/* fault.h - test-only fault injection outside the read path: output
 * writes (batch results) and buffer growth (strbuf).  The spec comes from
 * MOESTREAM_FAULT, the variable io/uring.c reads for expert reads (eio,
 * short, stall); this module owns the other kinds:
 *   "write:N[:K]"  every Nth output write fails with EIO after writing
 *                  half its bytes (a torn record), K times at most;
 *   "alloc:N[:K]"  every Nth buffer growth fails with ENOMEM, K times at most.
 * Without the variable nothing fails and a check costs one atomic load.
 * Owns: fault_* only.  Thread safety: fault_hit may be called from any
 * thread; fault_set only before threads use it (tests). */
#ifndef MS_FAULT_H
#define MS_FAULT_H

#include <stdbool.h>

typedef enum fault_kind { FAULT_WRITE, FAULT_ALLOC, FAULT_KINDS } fault_kind;

/* Counts one event of this kind; true when it is to fail. */
bool fault_hit(fault_kind k);
/* Replaces the spec (NULL: none) and restarts the counts; tests only. */
void fault_set(const char *spec);

#endif
