// Pure hash functions for ckpt: CRC-32 (zip records; libdeflate, zlib for combining) and XXH3
// (per-chunk checksums).
// No I/O, no global state. Thin wrappers so Swift never imports zlib.h/xxhash.h directly.
#ifndef CKPT_HASH_H
#define CKPT_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Continues a standard zlib CRC-32 (`crc32(3)`); start with 0.
uint32_t ckpt_crc32_update(uint32_t crc, const void *data, size_t length);

/// Combines CRC-32s of two adjacent byte ranges (`crc32_combine(3)`).
uint32_t ckpt_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t length2);

/// One-shot XXH3-64 of a buffer (`XXH3_64bits(3)`).
uint64_t ckpt_xxh3_64(const void *data, size_t length);

/// Streaming XXH3-64: opaque state.
typedef struct ckpt_xxh3_state ckpt_xxh3_state;
ckpt_xxh3_state *ckpt_xxh3_create(void);
void ckpt_xxh3_free(ckpt_xxh3_state *state);
void ckpt_xxh3_reset(ckpt_xxh3_state *state);
void ckpt_xxh3_update(ckpt_xxh3_state *state, const void *data, size_t length);
uint64_t ckpt_xxh3_digest(const ckpt_xxh3_state *state);

#ifdef __cplusplus
}
#endif
#endif
