/*
 * au_bootstrap: `voxi-auth bootstrap [--key-file PATH] [--database-url URL]`, the first
 * step on an empty database (scripts/run.sh runs it after the migrations).
 *
 * When no org exists: creates the org "default" and a platform-admin API key in it (every
 * scope plus platform:admin), writes the key to PATH (mode 0600, replaced atomically)
 * before committing, prints it once on stdout, and exits 0. When an org exists already:
 * prints "already bootstrapped; the admin key was shown when it was created" and exits 0
 * without any secret. Two bootstraps at once serialise on a table lock: one creates.
 *
 * URL defaults to $VOXI_DATABASE_URL, else the services' default. Blocking libpq: a
 * command-line path, never on an event loop. Exit 1 on failure (reason on stderr), 2 on
 * a usage error.
 *
 * Threads: main thread.
 */
#ifndef AU_BOOTSTRAP_H
#define AU_BOOTSTRAP_H

/* argv[0] is "bootstrap". Returns the exit code. */
int au_bootstrap_main(int argc, char **argv);

#endif
