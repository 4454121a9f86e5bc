/*
 * Fuzz target: the value of an SDP a=crypto attribute (RFC 4568 SDES), parsed as the SDP
 * answerer does; a line that parses must format back to something that parses to the same
 * key.
 *
 *   libFuzzer: make fuzz        replay: linked with replay_main.c, run by make test
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/media/md_srtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    /* An exact-size heap copy: any read past `size` is caught by ASan. */
    char *line = malloc(size ? size : 1);
    memcpy(line, data, size);
    md_srtp_crypto_t c;
    if (md_srtp_crypto_parse(line, size, &c) == LC_OK) {
        char out[MD_SRTP_CRYPTO_VALUE_MAX];
        size_t n = md_srtp_crypto_format(&c, out, sizeof(out));
        md_srtp_crypto_t back;
        if (n == 0 || md_srtp_crypto_parse(out, n, &back) != LC_OK ||
            memcmp(back.key_salt, c.key_salt, sizeof(c.key_salt)) != 0 || back.tag != c.tag ||
            back.suite != c.suite)
            __builtin_trap();
    }
    free(line);
    return 0;
}
