/*
 * Fuzz target: what an Authorization header's token and an API request's timestamps go
 * through in voxi-auth: the JWT verifier (shape, base64url, header JSON, algorithm pinning,
 * HMAC), the claims checks on any JSON object (reached directly, since a fuzzer cannot
 * forge a signature), and the RFC 3339 parser.
 *
 * The first byte picks the parser: 'C' claims JSON, 'R' RFC 3339, anything else a token.
 *
 *   libFuzzer: make fuzz        replay: linked with replay_main.c, run by make test
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* the parsers' own files: this target needs none of the service around them */
#include "../../services/auth/jwt.c"
#include "../../services/auth/scope.c"
#include "../../services/auth/text.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_S 1900000000LL

static au_jwt_t *verifier;

static void
drop_verifier(void)
{
    au_jwt_destroy(verifier);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (verifier == NULL) {
        char err[128];
        au_jwt_opts_t opts = {.hs256_secret = "fuzz-secret-0123456789abcdef0123456789",
                              .issuer = "https://idp.fuzz/",
                              .audience = "voxihub",
                              .leeway_s = 30};
        if (au_jwt_create(&opts, &verifier, err, sizeof(err)) != LC_OK)
            abort();
        atexit(drop_verifier);
    }
    if (size == 0)
        return 0;
    const char *text = (const char *) data + 1;
    size_t len = size - 1;
    au_jwt_claims_t out;
    const char *why = NULL;
    switch (data[0]) {
    case 'C': {
        json_error_t jerr;
        json_t *claims = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (claims != NULL && json_is_object(claims))
            (void) check_claims(verifier, claims, NOW_S, &out, &why);
        json_decref(claims);
        break;
    }
    case 'R': {
        char *copy = strndup(text, len); /* the API hands it a NUL-terminated JSON string */
        int64_t ms;
        if (copy != NULL)
            (void) au_parse_rfc3339(copy, &ms);
        free(copy);
        break;
    }
    default:
        (void) au_jwt_verify(verifier, (const char *) data, size, NOW_S, &out, &why);
        break;
    }
    return 0;
}
