/* The random and sparse-random plugins' data: a pure function of the seed
 * and the offset, so any range can be produced (and a write checked) on
 * its own, by any thread, in any order.  Not for cryptography. */
#ifndef NBDCAGE_RANDOM_BYTES_H
#define NBDCAGE_RANDOM_BYTES_H

#include <stdint.h>
#include <string.h>
#include <sys/random.h>

/* splitmix64: a good 64-bit mix of its input. */
static inline uint64_t random_mix(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* The eight bytes of the word at offset `word * 8`, little-endian. */
static inline uint64_t random_word(uint64_t seed, uint64_t word)
{
  return random_mix(seed ^ random_mix(word));
}

/* The bytes of [offset, offset+count) into buf. */
static inline void random_fill(uint64_t seed, uint8_t *buf, uint32_t count, uint64_t offset)
{
  while (count > 0) {
    uint64_t w = random_word(seed, offset >> 3);
    unsigned skip = (unsigned)(offset & 7), n = 8 - skip;
    if (n > count) n = count;
    for (unsigned i = 0; i < n; i++) buf[i] = (uint8_t)(w >> ((skip + i) * 8));
    buf += n;
    count -= n;
    offset += n;
  }
}

/* A seed from the kernel, for runs without seed=. */
static inline uint64_t random_seed(void)
{
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, 0) != sizeof s) s = 0x6e6264636167650aULL;
  return s;
}

#endif
