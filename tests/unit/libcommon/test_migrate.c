/*
 * Unit tests for lc_migrate against a real PostgreSQL whose libpq conninfo is in
 * $VOXI_TEST_PG_DSN (scripts/testenv.sh provides it). Every test gets its own database and
 * its own migrations directory under /tmp. Run from the repository root: one test applies
 * the real `migrations/` directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lc_log.h"
#include "lc_migrate.h"
#include "lc_time.h"

typedef struct {
    char dbname[40];
    char *dsn;
    char dir[64];
} fx_t;

/* ---- a database per test, through blocking libpq ---- */

static const char *
base_dsn(void)
{
    const char *dsn = getenv("VOXI_TEST_PG_DSN");
    if (dsn == NULL || *dsn == '\0') {
        fprintf(stderr, "VOXI_TEST_PG_DSN is not set: run through scripts/testenv.sh\n");
        fail();
    }
    return dsn;
}

static void
append_quoted(char *out, size_t size, const char *keyword, const char *value)
{
    size_t len = strlen(out);
    len += (size_t) snprintf(out + len, size - len, "%s%s='", len ? " " : "", keyword);
    for (const char *p = value; *p && len + 3 < size; p++) {
        if (*p == '\'' || *p == '\\')
            out[len++] = '\\';
        out[len++] = *p;
    }
    snprintf(out + len, size - len, "'");
}

/* The base conninfo (keyword/value or URI) with dbname replaced. */
static char *
dsn_with_db(const char *base, const char *dbname)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &err);
    if (opts == NULL) {
        fprintf(stderr, "VOXI_TEST_PG_DSN does not parse: %s\n", err ? err : "?");
        PQfreemem(err);
        fail();
    }
    char *out = calloc(1, 4096);
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && strcmp(o->keyword, "dbname") != 0)
            append_quoted(out, 4096, o->keyword, o->val);
    append_quoted(out, 4096, "dbname", dbname);
    PQconninfoFree(opts);
    return out;
}

/* Runs sql; returns the first value of the first row (malloc'd, "" when no rows), or NULL
 * when the statement failed. */
static char *
sql_value(const char *dsn, const char *sql)
{
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to the test database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        fail();
    }
    PGresult *res = PQexec(conn, sql);
    char *value = NULL;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        value = strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    else if (PQresultStatus(res) == PGRES_COMMAND_OK)
        value = strdup("");
    PQclear(res);
    PQfinish(conn);
    return value;
}

static void
assert_sql_value(const char *dsn, const char *sql, const char *want)
{
    char *got = sql_value(dsn, sql);
    if (got == NULL)
        fail_msg("%s: failed", sql);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "%s\n  got  %s\n  want %s\n", sql, got, want);
    assert_string_equal(got, want);
    free(got);
}

static void
sync_exec(const char *dsn, const char *sql)
{
    char *v = sql_value(dsn, sql);
    assert_non_null(v);
    free(v);
}

/* ---- migration files ---- */

static void
write_file(fx_t *fx, const char *name, const char *content)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void
remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(dir);
}

static int
setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    const char *base = base_dsn();
    lc_id_new("voxi_t_", fx->dbname, sizeof(fx->dbname));
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", fx->dbname);
    sync_exec(base, sql);
    fx->dsn = dsn_with_db(base, fx->dbname);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/voxi-migrate-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fx_t *fx = *state;
    remove_tree(fx->dir);
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", fx->dbname);
    sync_exec(base_dsn(), sql);
    free(fx->dsn);
    free(fx);
    return 0;
}

/* ---- tests ---- */

static void
test_applies_in_numeric_order_once(void **state)
{
    fx_t *fx = *state;
    /* Written out of order; each depends on the one before. */
    write_file(fx, "0010_third.sql", "INSERT INTO log (v) VALUES (10);\n");
    write_file(fx, "0002_second.sql",
               "INSERT INTO log (v) VALUES (2);\nCREATE TABLE second (x int);\n");
    write_file(fx, "0001_first.sql",
               "CREATE TABLE log (id serial PRIMARY KEY, v int NOT NULL);\n"
               "INSERT INTO log (v) VALUES (1);\n");
    /* Not migrations: ignored. */
    write_file(fx, "README.md", "not sql");
    write_file(fx, "12_short.sql", "syntax error");
    write_file(fx, "0003-dash.sql", "syntax error");
    write_file(fx, "abcd_letters.sql", "syntax error");
    write_file(fx, "0004_notes.txt", "syntax error");
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/0005_dir.sql", fx->dir);
    assert_int_equal(mkdir(sub, 0700), 0);

    int applied = -1;
    assert_int_equal(lc_migrate_run(fx->dsn, fx->dir, &applied), LC_OK);
    assert_int_equal(applied, 3);
    assert_sql_value(fx->dsn, "SELECT string_agg(v::text, ',' ORDER BY id) FROM log", "1,2,10");
    assert_sql_value(fx->dsn,
                     "SELECT string_agg(version || ':' || name, ',' ORDER BY version) "
                     "FROM schema_migrations",
                     "1:0001_first.sql,2:0002_second.sql,10:0010_third.sql");

    assert_int_equal(lc_migrate_run(fx->dsn, fx->dir, &applied), LC_OK);
    assert_int_equal(applied, 0);
    assert_sql_value(fx->dsn, "SELECT string_agg(v::text, ',' ORDER BY id) FROM log", "1,2,10");

    write_file(fx, "0011_fourth.sql", "INSERT INTO log (v) VALUES (11);");
    assert_int_equal(lc_migrate_run(fx->dsn, fx->dir, &applied), LC_OK);
    assert_int_equal(applied, 1);
    assert_sql_value(fx->dsn, "SELECT string_agg(v::text, ',' ORDER BY id) FROM log", "1,2,10,11");
}

static void
test_failing_file_rolls_back(void **state)
{
    fx_t *fx = *state;
    write_file(fx, "0001_a.sql", "CREATE TABLE a (x int);");
    write_file(fx, "0002_b.sql", "CREATE TABLE b (x int);\nINSERT INTO no_such_table VALUES (1);");
    write_file(fx, "0003_c.sql", "CREATE TABLE c (x int);");

    int applied = -1;
    assert_int_equal(lc_migrate_run(fx->dsn, fx->dir, &applied), LC_ERR_DB);
    assert_int_equal(applied, 1);
    assert_sql_value(fx->dsn,
                     "SELECT concat_ws(',', to_regclass('a'), to_regclass('b'), to_regclass('c'))",
                     "a");
    assert_sql_value(fx->dsn, "SELECT string_agg(name, ',') FROM schema_migrations", "0001_a.sql");

    /* Fixed: the rest goes in. */
    write_file(fx, "0002_b.sql", "CREATE TABLE b (x int);");
    assert_int_equal(lc_migrate_run(fx->dsn, fx->dir, &applied), LC_OK);
    assert_int_equal(applied, 2);
    assert_sql_value(fx->dsn,
                     "SELECT concat_ws(',', to_regclass('a'), to_regclass('b'), to_regclass('c'))",
                     "a,b,c");
}

static void
test_duplicate_numbers_rejected(void **state)
{
    fx_t *fx = *state;
    write_file(fx, "0001_a.sql", "CREATE TABLE a (x int);");
    write_file(fx, "0002_b.sql", "CREATE TABLE b (x int);");
    write_file(fx, "0002_other.sql", "CREATE TABLE other (x int);");
    int applied = -1;
    assert_int_equal(lc_migrate_run(fx->dsn, fx->dir, &applied), LC_ERR_INVALID);
    assert_int_equal(applied, 0);
    /* Rejected before touching the database. */
    assert_sql_value(
        fx->dsn, "SELECT concat_ws(',', to_regclass('schema_migrations'), to_regclass('a'))", "");
}

static void
test_file_size_bound(void **state)
{
    fx_t *fx = *state;
    /* Exactly the bound: accepted. */
    size_t n = LC_MIGRATE_FILE_MAX_BYTES;
    char *sql = malloc(n + 2);
    const char *head = "CREATE TABLE big (x int); -- ";
    memcpy(sql, head, strlen(head));
    memset(sql + strlen(head), 'x', n - strlen(head));
    sql[n] = '\0';
    write_file(fx, "0001_big.sql", sql);
    int applied = -1;
    assert_int_equal(lc_migrate_run(fx->dsn, fx->dir, &applied), LC_OK);
    assert_int_equal(applied, 1);

    /* One byte more: refused, nothing of it applied. */
    const char *head2 = "CREATE TABLE bigger (x int); --";
    memcpy(sql, head2, strlen(head2));
    sql[n] = 'x';
    sql[n + 1] = '\0';
    write_file(fx, "0002_bigger.sql", sql);
    free(sql);
    assert_int_equal(lc_migrate_run(fx->dsn, fx->dir, &applied), LC_ERR_TOO_LARGE);
    assert_int_equal(applied, 0);
    assert_sql_value(fx->dsn, "SELECT concat_ws(',', to_regclass('big'), to_regclass('bigger'))",
                     "big");
}

static void
test_missing_dir_and_unreachable_db(void **state)
{
    fx_t *fx = *state;
    int applied = -1;
    assert_int_equal(lc_migrate_run(fx->dsn, "/nonexistent/voxi-migrations", &applied),
                     LC_ERR_NOT_FOUND);
    assert_int_equal(applied, 0);
    write_file(fx, "0001_a.sql", "CREATE TABLE a (x int);");
    assert_int_equal(lc_migrate_run("host=/nonexistent/voxi port=5 dbname=x", fx->dir, &applied),
                     LC_ERR_UNAVAILABLE);
}

static void
test_repo_migrations_apply(void **state)
{
    fx_t *fx = *state;
    int applied = -1;
    assert_int_equal(lc_migrate_run(fx->dsn, "migrations", &applied), LC_OK);
    assert_true(applied >= 1);
    assert_sql_value(fx->dsn, "SELECT min(name) FROM schema_migrations", "0001_orgs.sql");
    sync_exec(fx->dsn, "INSERT INTO orgs (id, name) VALUES ('org_1', 'Acme')");
    assert_null(sql_value(fx->dsn, "INSERT INTO orgs (id, name) VALUES ('org_2', '')"));
    assert_sql_value(fx->dsn, "SELECT name || ':' || (created_at IS NOT NULL) FROM orgs",
                     "Acme:true");
    assert_int_equal(lc_migrate_run(fx->dsn, "migrations", &applied), LC_OK);
    assert_int_equal(applied, 0);
}

static void
test_main_command_line(void **state)
{
    fx_t *fx = *state;
    write_file(fx, "0001_a.sql", "CREATE TABLE a (x int);");
    char dir_arg[128];
    snprintf(dir_arg, sizeof(dir_arg), "--dir=%s", fx->dir);
    char *ok_argv[] = {"migrate", "--database-url", fx->dsn, dir_arg, NULL};
    assert_int_equal(lc_migrate_main(4, ok_argv), 0);
    assert_sql_value(fx->dsn, "SELECT count(*) FROM schema_migrations", "1");

    /* The environment supplies both. */
    setenv("VOXI_DATABASE_URL", fx->dsn, 1);
    setenv("VOXI_MIGRATIONS_DIR", fx->dir, 1);
    write_file(fx, "0002_b.sql", "CREATE TABLE b (x int);");
    char *env_argv[] = {"migrate", NULL};
    assert_int_equal(lc_migrate_main(1, env_argv), 0);
    assert_sql_value(fx->dsn, "SELECT count(*) FROM schema_migrations", "2");

    char *bad_argv[] = {"migrate", "--frobnicate", NULL};
    assert_int_equal(lc_migrate_main(2, bad_argv), 1);
    char *missing_argv[] = {"migrate", "--dir", NULL};
    assert_int_equal(lc_migrate_main(2, missing_argv), 1);
    unsetenv("VOXI_DATABASE_URL");
    assert_int_equal(lc_migrate_main(1, env_argv), 1);
    unsetenv("VOXI_MIGRATIONS_DIR");
}

int
main(void)
{
    lc_log_init("test_migrate", LC_LOG_WARN, LC_LOG_FMT_LOGFMT);
    const char *dsn = getenv("VOXI_TEST_PG_DSN");
    if (dsn == NULL || *dsn == '\0') {
        fprintf(stderr, "test_migrate: VOXI_TEST_PG_DSN is not set (a libpq conninfo for a "
                        "PostgreSQL that lets us CREATE DATABASE): run through "
                        "scripts/testenv.sh\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_applies_in_numeric_order_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_file_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_numbers_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_size_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir_and_unreachable_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repo_migrations_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_command_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
