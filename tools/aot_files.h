/* aot_files.h - private to tools/: what `kiln compile` writes besides the object, and how it
 * links: the C header, the weights file, and the system linker for .so/.a/--exe. */
#ifndef KILN_TOOLS_AOT_FILES_H
#define KILN_TOOLS_AOT_FILES_H

#include "codegen/codegen.h"

/* Writes NAME.h for the compiled model g (atomically): the NAME_* API and each input's and
 * output's name, dtype and shape as macros. */
KnStatus aot_write_header(const char *path, const char *name, const KnGraph *g, const CgObject *obj,
                          const char *source, KnError *err);

/* Writes the weights file the object's descriptor expects (format in include/kiln_aot.h). */
KnStatus aot_write_weights(const char *path, const CgObject *obj, KnError *err);

/* Runs argv (a linker or archiver) and waits; fails naming the command when it cannot start or
 * exits non-zero. Its own messages go to stderr. */
KnStatus aot_run_tool(char *const *argv, KnError *err);

/* The folder holding libkiln_rt.a (and libkiln_rt_main.a, libkiln_rt.so) for the host: next to
 * the kiln binary (build tree) or in ../lib (installed). */
KnStatus aot_find_runtime(char *out, size_t size, KnError *err);

#endif
