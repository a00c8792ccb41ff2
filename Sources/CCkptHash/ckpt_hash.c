#include "ckpt_hash.h"

#include <libdeflate.h>
#include <limits.h>
#include <xxhash.h>
#include <zlib.h>

uint32_t ckpt_crc32_update(uint32_t crc, const void *data, size_t length) {
    // libdeflate's CRC-32 (PCLMULQDQ/VPCLMULQDQ where available) is the zlib CRC-32, several
    // times faster than zlib's own.
    return libdeflate_crc32(crc, data, length);
}

uint32_t ckpt_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t length2) {
    return (uint32_t)crc32_combine(crc1, crc2, (z_off_t)length2);
}

uint64_t ckpt_xxh3_64(const void *data, size_t length) {
    return XXH3_64bits(data, length);
}

struct ckpt_xxh3_state { XXH3_state_t *s; };

ckpt_xxh3_state *ckpt_xxh3_create(void) {
    XXH3_state_t *s = XXH3_createState();
    if (!s) return NULL;
    XXH3_64bits_reset(s);
    return (ckpt_xxh3_state *)s;
}

void ckpt_xxh3_free(ckpt_xxh3_state *state) { XXH3_freeState((XXH3_state_t *)state); }
void ckpt_xxh3_reset(ckpt_xxh3_state *state) { XXH3_64bits_reset((XXH3_state_t *)state); }
void ckpt_xxh3_update(ckpt_xxh3_state *state, const void *data, size_t length) {
    XXH3_64bits_update((XXH3_state_t *)state, data, length);
}
uint64_t ckpt_xxh3_digest(const ckpt_xxh3_state *state) {
    return XXH3_64bits_digest((const XXH3_state_t *)state);
}
