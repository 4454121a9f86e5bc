/*
 * lc_migrate: applies the SQL files of a migrations directory to a database, in order,
 * once each. It runs from the command line (`voxi-registry migrate`) before the services
 * start, so it uses blocking libpq and must not be called from an event loop.
 *
 * Files are named NNNN_description.sql: four digits (the version), an underscore, `.sql`.
 * Other names are ignored (a `.sql` file with another name is ignored with a warning);
 * two files with the same version are an error and nothing is applied. Applied versions
 * are recorded in the table schema_migrations (version, name, applied_at), created when
 * absent.
 *
 * Concurrency: every run holds a session advisory lock (a fixed key) from before it reads
 * schema_migrations until it is done, so two migrators started together apply each file
 * once; the second waits for the first.
 *
 * Each file runs in its own transaction together with its schema_migrations row, so a file
 * is either applied and recorded or neither. A file must therefore not contain BEGIN,
 * COMMIT or statements that refuse to run inside a transaction block (CREATE INDEX
 * CONCURRENTLY, CREATE DATABASE, VACUUM): make those a separate operational step.
 *
 * Threads: any thread; no shared state.
 */
#ifndef LC_MIGRATE_H
#define LC_MIGRATE_H

#include "lc_status.h"

/* Largest migration file accepted. */
#define LC_MIGRATE_FILE_MAX_BYTES (1024 * 1024)

/*
 * Applies every migration of `dir` whose version schema_migrations does not record, in
 * version order, stopping at the first failure (files before it stay applied).
 * conninfo: libpq keyword/value string or URI, borrowed, never logged. dir: borrowed.
 * applied_out (may be NULL) gets the number applied by this run, also on failure.
 * Returns LC_OK; LC_ERR_NOT_FOUND or LC_ERR_IO when dir cannot be read; LC_ERR_INVALID for
 * duplicate versions or a file containing a NUL byte; LC_ERR_TOO_LARGE for a file over
 * LC_MIGRATE_FILE_MAX_BYTES; LC_ERR_UNAVAILABLE when the database cannot be reached;
 * LC_ERR_DB when a statement fails (the file name and the server message are logged).
 */
lc_status_t lc_migrate_run(const char *conninfo, const char *dir, int *applied_out);

/*
 * The `migrate` command: `migrate [--database-url URL] [--dir DIR]`. argv[0] is the command
 * name and is skipped; `--opt=value` works too. URL defaults to $VOXI_DATABASE_URL, DIR to
 * $VOXI_MIGRATIONS_DIR, else "migrations". Prints "migrations: N applied" on stdout and
 * returns 0, or prints the failure on stderr and returns 1. Logging should already be set
 * up (lc_log_init). Main thread.
 */
int lc_migrate_main(int argc, char **argv);

#endif
