/*
 * The OpenAPI 3.1 document (services/gateway/openapi.json, embedded into the binary at
 * build time) and the /docs page rendered from it at start-up: plain HTML, no script,
 * nothing fetched from elsewhere.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "lc_alloc.h"
#include "lc_log.h"

/* The document, as a NUL-terminated string (JSON text holds no NUL). The Makefile makes
 * this object depend on the JSON file; the assembler resolves the path from the repo root,
 * where make runs. */
__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        "gw_openapi_json_start:\n"
        ".incbin \"services/gateway/openapi.json\"\n"
        ".byte 0\n"
        ".popsection\n");
extern const char gw_openapi_json_start[];

/* ---- a growing string ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} sb_t;

static void
sb_add(sb_t *sb, const char *s, size_t n)
{
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 4096;
        while (cap < sb->len + n + 1)
            cap *= 2;
        sb->buf = lc_realloc(sb->buf, cap);
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

static void
sb_puts(sb_t *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

/* Appends text with &, <, >, " and ' escaped. */
static void
sb_escape(sb_t *sb, const char *s)
{
    for (; s != NULL && *s; s++) {
        switch (*s) {
        case '&':
            sb_puts(sb, "&amp;");
            break;
        case '<':
            sb_puts(sb, "&lt;");
            break;
        case '>':
            sb_puts(sb, "&gt;");
            break;
        case '"':
            sb_puts(sb, "&quot;");
            break;
        case '\'':
            sb_puts(sb, "&#39;");
            break;
        default:
            sb_add(sb, s, 1);
        }
    }
}

static const char *
str_at(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* ---- the docs page ---- */

static const char page_head[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>VoxiHub API</title>\n<style>\n"
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;"
    "color:#222}\n"
    "table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;"
    "border-bottom:1px solid #ddd;vertical-align:top}\n"
    "code{font-family:ui-monospace,monospace}.m{font-weight:bold;font-family:ui-monospace,"
    "monospace}\n"
    ".GET{color:#0a6}.POST{color:#06c}.PATCH{color:#a60}.DELETE{color:#c33}\n"
    "small{color:#666}\n</style></head><body>\n";

static void
render_operation(sb_t *sb, const char *path, const char *method, json_t *op)
{
    char upper[16];
    size_t i = 0;
    for (; i < sizeof(upper) - 1 && method[i]; i++)
        upper[i] = (char) (method[i] >= 'a' && method[i] <= 'z' ? method[i] - 32 : method[i]);
    upper[i] = '\0';
    sb_puts(sb, "<tr><td class=\"m ");
    sb_escape(sb, upper);
    sb_puts(sb, "\">");
    sb_escape(sb, upper);
    sb_puts(sb, "</td><td><code>");
    sb_escape(sb, path);
    sb_puts(sb, "</code></td><td>");
    sb_escape(sb, str_at(op, "summary"));
    const char *desc = str_at(op, "description");
    if (desc[0]) {
        sb_puts(sb, "<br><small>");
        sb_escape(sb, desc);
        sb_puts(sb, "</small>");
    }
    sb_puts(sb, "</td><td><code>");
    const char *scope = str_at(op, "x-voxi-scope");
    sb_escape(sb, scope[0] ? scope : "none");
    sb_puts(sb, "</code></td><td>");
    const char *code;
    json_t *resp;
    bool first = true;
    json_object_foreach(json_object_get(op, "responses"), code, resp)
    {
        if (!first)
            sb_puts(sb, " ");
        first = false;
        sb_escape(sb, code);
    }
    sb_puts(sb, "</td></tr>\n");
}

static char *
render_docs(json_t *doc, size_t *len_out)
{
    sb_t sb = {0};
    json_t *info = json_object_get(doc, "info");
    sb_puts(&sb, page_head);
    sb_puts(&sb, "<h1>");
    sb_escape(&sb, str_at(info, "title"));
    sb_puts(&sb, " <small>");
    sb_escape(&sb, str_at(info, "version"));
    sb_puts(&sb, "</small></h1>\n<p>");
    sb_escape(&sb, str_at(info, "description"));
    sb_puts(&sb, "</p>\n<p>The machine-readable OpenAPI 3.1 document is at "
                 "<a href=\"/v1/openapi.json\"><code>/v1/openapi.json</code></a>. Errors are "
                 "<code>application/problem+json</code> (RFC 9457).</p>\n"
                 "<h2>Routes</h2>\n<table><tr><th>Method</th><th>Path</th><th>What it does"
                 "</th><th>Scope</th><th>Responses</th></tr>\n");
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op)
        {
            if (strcmp(method, "parameters") == 0 || !json_is_object(op))
                continue;
            render_operation(&sb, path, method, op);
        }
    }
    sb_puts(&sb, "</table>\n<h2>Schemas</h2>\n<table><tr><th>Name</th><th>Description</th>"
                 "</tr>\n");
    const char *name;
    json_t *schema;
    json_object_foreach(json_object_get(json_object_get(doc, "components"), "schemas"), name,
                        schema)
    {
        sb_puts(&sb, "<tr><td><code>");
        sb_escape(&sb, name);
        sb_puts(&sb, "</code></td><td>");
        sb_escape(&sb, str_at(schema, "description"));
        sb_puts(&sb, "</td></tr>\n");
    }
    sb_puts(&sb, "</table>\n</body></html>\n");
    *len_out = sb.len;
    return sb.buf;
}

lc_status_t
gw_openapi_load(gw_t *gw)
{
    gw->openapi = gw_openapi_json_start;
    gw->openapi_len = strlen(gw_openapi_json_start);
    json_error_t err;
    json_t *doc = json_loadb(gw->openapi, gw->openapi_len, 0, &err);
    if (doc == NULL || !json_is_object(json_object_get(doc, "paths"))) {
        LC_ERROR("http", "embedded OpenAPI document is broken: line %d: %s", err.line, err.text);
        json_decref(doc);
        return LC_ERR_PROTOCOL;
    }
    gw->docs_html = render_docs(doc, &gw->docs_len);
    json_decref(doc);
    return LC_OK;
}

void
gw_openapi_free(gw_t *gw)
{
    free(gw->docs_html);
    gw->docs_html = NULL;
}

void
gw_serve_local(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, gw_local_t which)
{
    switch (which) {
    case GW_LOCAL_OPENAPI:
        gw_respond(gw, req, ctx, 200, "application/json", gw->openapi, gw->openapi_len);
        break;
    case GW_LOCAL_DOCS:
        gw_respond(gw, req, ctx, 200, "text/html; charset=utf-8", gw->docs_html, gw->docs_len);
        break;
    default:
        gw_respond_problem(gw, req, ctx, 404, "not_found", "No such route.", NULL, 0);
        break;
    }
}
