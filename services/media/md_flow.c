#include "md_flow.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"

#define PHRASES_MAX 64

typedef enum {
    P_IDLE = 0,
    P_SAYING,        /* a say node: next when the speech ends */
    P_LISTEN,        /* a listen node: waiting for words */
    P_MENU,          /* a menu node: waiting for a choice */
    P_WEBHOOK,       /* waiting for the tool's answer */
    P_THEN_HANGUP,   /* the hangup message plays */
    P_THEN_TRANSFER, /* the transfer message plays */
    P_DONE,
} phase_t;

struct md_flow {
    const json_t *nodes;
    const char *start;
    json_t *vars;
    md_flow_ops_t ops;
    const json_t *node; /* the current node */
    phase_t phase;
    int tries;
    int steps; /* nodes entered since the caller last gave input */
    char text[MD_FLOW_TEXT_MAX];
};

static const char *
str(const json_t *node, const char *key)
{
    const char *s = json_string_value(json_object_get(node, key));
    return s ? s : "";
}

static int
num(const json_t *node, const char *key, int def)
{
    const json_t *v = json_object_get(node, key);
    return json_is_integer(v) ? (int) json_integer_value(v) : def;
}

/* ---- templates ---- */

static const json_t *
lookup(const json_t *vars, const char *path)
{
    char part[128];
    const json_t *at = vars;
    while (*path && at) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t) (dot - path) : strlen(path);
        if (n == 0 || n >= sizeof(part))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        at = json_is_object(at) ? json_object_get(at, part) : NULL;
        path += n + (dot ? 1 : 0);
    }
    return at;
}

void
md_flow_interpolate(const char *tmpl, const json_t *vars, char *out, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return;
    for (const char *p = tmpl; *p && o + 1 < size;) {
        const char *close = strncmp(p, "{{", 2) == 0 ? strstr(p + 2, "}}") : NULL;
        if (close == NULL) {
            out[o++] = *p++;
            continue;
        }
        char name[256];
        const char *a = p + 2, *b = close;
        while (a < b && isspace((unsigned char) *a))
            a++;
        while (b > a && isspace((unsigned char) b[-1]))
            b--;
        size_t n = (size_t) (b - a);
        p = close + 2;
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, a, n);
        name[n] = '\0';
        const json_t *v = lookup(vars, name);
        char numbuf[64];
        const char *val = "";
        if (json_is_string(v))
            val = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(numbuf, sizeof(numbuf), "%lld", (long long) json_integer_value(v)),
                val = numbuf;
        else if (json_is_real(v))
            snprintf(numbuf, sizeof(numbuf), "%g", json_real_value(v)), val = numbuf;
        else if (json_is_boolean(v))
            val = json_is_true(v) ? "true" : "false";
        char *dumped = json_is_object(v) || json_is_array(v) ? json_dumps(v, JSON_COMPACT) : NULL;
        if (dumped)
            val = dumped;
        size_t len = strlen(val);
        if (len > size - 1 - o)
            len = size - 1 - o;
        memcpy(out + o, val, len);
        o += len;
        free(dumped);
    }
    out[o] = '\0';
}

bool
md_flow_keyword_match(const char *text, const char *keyword)
{
    size_t kn = strlen(keyword);
    if (kn == 0 || text == NULL)
        return false;
    for (const char *p = text; *p; p++) {
        if (p != text && isalnum((unsigned char) p[-1]))
            continue;
        if (strncasecmp(p, keyword, kn) == 0 && !isalnum((unsigned char) p[kn]))
            return true;
    }
    return false;
}

/* ---- walking ---- */

static const json_t *
find(const md_flow_t *f, const char *id)
{
    size_t i;
    const json_t *node;
    json_array_foreach(f->nodes, i, node)
    {
        if (strcmp(str(node, "id"), id) == 0)
            return node;
    }
    return NULL;
}

static void
finish(md_flow_t *f, const char *reason)
{
    f->phase = P_DONE;
    f->ops.stop_listening(f->ops.arg);
    f->ops.hangup(f->ops.arg, reason);
}

static void enter(md_flow_t *f, const char *id);

static void
say_text(md_flow_t *f, const char *tmpl)
{
    md_flow_interpolate(tmpl, f->vars, f->text, sizeof(f->text));
    f->ops.say(f->ops.arg, f->text);
}

static void
listen_menu(md_flow_t *f)
{
    const char *phrases[PHRASES_MAX + 1];
    size_t n = 0, i, j;
    const json_t *choice, *kw;
    json_array_foreach(json_object_get(f->node, "choices"), i, choice)
    {
        json_array_foreach(json_object_get(choice, "keywords"), j, kw)
        {
            if (n < PHRASES_MAX && json_is_string(kw))
                phrases[n++] = json_string_value(kw);
        }
    }
    phrases[n] = NULL;
    f->ops.listen(f->ops.arg, phrases, num(f->node, "timeout_ms", 5000));
}

static void
enter(md_flow_t *f, const char *id)
{
    const json_t *node = find(f, id);
    if (node == NULL) {
        LC_WARN("flow", "no node \"%s\": hanging up", id);
        finish(f, "flow_error");
        return;
    }
    if (++f->steps > MD_FLOW_MAX_STEPS) {
        LC_WARN("flow", "%d nodes without input: hanging up", MD_FLOW_MAX_STEPS);
        finish(f, "flow_loop");
        return;
    }
    f->node = node;
    f->tries = 0;
    const char *type = str(node, "type");
    if (f->ops.entered)
        f->ops.entered(f->ops.arg, id, type);
    if (strcmp(type, "say") == 0) {
        f->phase = P_SAYING;
        say_text(f, str(node, "text"));
    } else if (strcmp(type, "listen") == 0) {
        f->phase = P_LISTEN;
        if (str(node, "prompt")[0])
            say_text(f, str(node, "prompt"));
        const char *none[] = {NULL};
        f->ops.listen(f->ops.arg, none, num(node, "timeout_ms", 8000));
    } else if (strcmp(type, "menu") == 0) {
        f->phase = P_MENU;
        say_text(f, str(node, "prompt"));
        listen_menu(f);
    } else if (strcmp(type, "webhook") == 0) {
        f->phase = P_WEBHOOK;
        char url[2100];
        md_flow_interpolate(str(node, "url"), f->vars, url, sizeof(url));
        char *args = json_dumps(f->vars, JSON_COMPACT);
        f->ops.webhook(f->ops.arg, url, args ? args : "{}", num(node, "timeout_ms", 5000));
        free(args);
    } else if (strcmp(type, "transfer") == 0) {
        if (str(node, "message")[0]) {
            f->phase = P_THEN_TRANSFER;
            say_text(f, str(node, "message"));
        } else {
            f->phase = P_DONE;
            f->ops.transfer(f->ops.arg, str(node, "to"));
        }
    } else if (strcmp(type, "hangup") == 0) {
        if (str(node, "message")[0]) {
            f->phase = P_THEN_HANGUP;
            say_text(f, str(node, "message"));
        } else {
            finish(f, "flow_hangup");
        }
    } else {
        LC_WARN("flow", "node \"%s\" has an unknown type \"%s\": hanging up", id, type);
        finish(f, "flow_error");
    }
}

static void
go(md_flow_t *f, const char *key)
{
    const char *next = str(f->node, key);
    if (next[0] == '\0') {
        finish(f, "flow_end");
        return;
    }
    enter(f, next);
}

lc_status_t
md_flow_create(const json_t *engine, json_t *variables, const md_flow_ops_t *ops, md_flow_t **out)
{
    *out = NULL;
    const json_t *nodes = json_object_get(engine, "nodes");
    const char *start = json_string_value(json_object_get(engine, "start"));
    if (!json_is_array(nodes) || json_array_size(nodes) == 0 || start == NULL) {
        json_decref(variables);
        return LC_ERR_INVALID;
    }
    md_flow_t *f = LC_NEW(md_flow_t);
    f->nodes = nodes;
    f->start = start;
    f->vars = variables ? variables : json_object();
    f->ops = *ops;
    *out = f;
    return LC_OK;
}

void
md_flow_destroy(md_flow_t *f)
{
    if (f == NULL)
        return;
    json_decref(f->vars);
    free(f);
}

void
md_flow_start(md_flow_t *f)
{
    f->steps = 0;
    enter(f, f->start);
}

void
md_flow_on_said(md_flow_t *f)
{
    switch (f->phase) {
    case P_SAYING:
        go(f, "next");
        break;
    case P_THEN_HANGUP:
        finish(f, "flow_hangup");
        break;
    case P_THEN_TRANSFER:
        f->phase = P_DONE;
        f->ops.transfer(f->ops.arg, str(f->node, "to"));
        break;
    default:
        break;
    }
}

/* A menu retry: prompt (no-input or no-match) and listen again, or the fallback. */
static void
menu_retry(md_flow_t *f, const char *prompt_key)
{
    if (++f->tries > num(f->node, "retries", 2)) {
        f->ops.stop_listening(f->ops.arg);
        go(f, "fallback");
        return;
    }
    const char *prompt = str(f->node, prompt_key);
    say_text(f, prompt[0] ? prompt : str(f->node, "prompt"));
    listen_menu(f);
}

void
md_flow_on_input(md_flow_t *f, const char *text, char digit)
{
    char dig[2] = {digit, 0};
    if (f->phase != P_LISTEN && f->phase != P_MENU)
        return;
    f->steps = 0;
    if (text)
        json_object_set_new(f->vars, "last_input", json_string(text));
    else
        json_object_set_new(f->vars, "digits", json_string(dig));
    if (f->phase == P_LISTEN) {
        json_object_set_new(f->vars, str(f->node, "variable"), json_string(text ? text : dig));
        f->ops.stop_listening(f->ops.arg);
        go(f, "next");
        return;
    }
    if (text && text[0] == '\0')
        return; /* no words (noise): keep waiting */
    size_t i, j;
    const json_t *choice, *kw;
    json_array_foreach(json_object_get(f->node, "choices"), i, choice)
    {
        bool hit = false;
        if (!text)
            hit = strcmp(str(choice, "digit"), dig) == 0;
        json_array_foreach(json_object_get(choice, "keywords"), j, kw)
        {
            hit = hit || (text && md_flow_keyword_match(text, json_string_value(kw)));
        }
        if (hit) {
            json_object_set_new(f->vars, str(f->node, "id"), json_string(text ? text : dig));
            f->ops.stop_listening(f->ops.arg);
            const char *next = str(choice, "next");
            enter(f, next);
            return;
        }
    }
    menu_retry(f, "no_match_prompt");
}

void
md_flow_on_timeout(md_flow_t *f)
{
    if (f->phase == P_LISTEN) {
        json_object_set_new(f->vars, str(f->node, "variable"), json_string(""));
        f->ops.stop_listening(f->ops.arg);
        go(f, "next");
    } else if (f->phase == P_MENU) {
        menu_retry(f, "no_input_prompt");
    }
}

void
md_flow_on_webhook(md_flow_t *f, bool ok, const char *result_json)
{
    if (f->phase != P_WEBHOOK)
        return;
    const char *var = str(f->node, "result_variable");
    json_t *v = ok && result_json ? json_loads(result_json, JSON_DECODE_ANY, NULL) : NULL;
    if (var[0] && json_is_object(v)) {
        /* templates name plain variables ({{order_status}}): the object's scalar fields
         * become <result_variable>_<field> */
        const char *key;
        json_t *field;
        json_object_foreach(v, key, field)
        {
            char name[160];
            size_t n = (size_t) snprintf(name, sizeof(name), "%s_%s", var, key);
            bool plain = n < 65 && !json_is_object(field) && !json_is_array(field);
            for (size_t i = 0; plain && name[i]; i++) {
                name[i] = (char) tolower((unsigned char) name[i]);
                plain = isalnum((unsigned char) name[i]) || name[i] == '_';
            }
            if (plain)
                json_object_set(f->vars, name, field);
        }
    }
    if (var[0] && ok)
        json_object_set_new(f->vars, var, v ? json_incref(v) : json_null());
    json_decref(v);
    if (!ok && str(f->node, "on_error")[0])
        go(f, "on_error");
    else
        go(f, "next");
}

bool
md_flow_listening(const md_flow_t *f)
{
    return f->phase == P_LISTEN || f->phase == P_MENU;
}

bool
md_flow_done(const md_flow_t *f)
{
    return f->phase == P_DONE;
}

json_t *
md_flow_variables(md_flow_t *f)
{
    return f->vars;
}
