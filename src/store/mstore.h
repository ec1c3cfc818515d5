/* SPDX-License-Identifier: MIT
 * mstore — the in-memory store: rate-limit logs and buckets, lockouts, probe counters and bans,
 * for one process, shared by every worker thread. It is what runs without a redis section, and
 * what answers while Redis is away with on_error: local.
 *
 * Concurrency: the key space is split into MSTORE_SHARDS shards by a keyed hash (SipHash with a
 * random key, so clients choosing `header:` keys cannot aim at one chain); each shard has its own
 * mutex, hash table and LRU list, so workers only contend when they touch the same shard at the
 * same moment — no global lock. An operation on several keys (a request's policies) locks their
 * shards in ascending order and evaluates all of them atomically, like the Lua script does.
 *
 * Memory: bounded by a byte budget split across shards. Entries carry their expiry; every
 * operation frees a few expired entries from its shard's LRU tail, and an insert that would go
 * over budget evicts from the tail (least recently used) until it fits.
 *
 * The semantics are those of store.h ("the algorithm"); every function takes `now` (ms, the
 * store clock) so tests can drive time. Thread-safe; never blocks beyond a shard mutex.
 */
#ifndef VISOR_MSTORE_H
#define VISOR_MSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define MSTORE_SHARDS       64
#define MSTORE_DEFAULT_MAX  ((size_t)64 << 20)   /* bytes */

/* A store bounded to about max_bytes (at least a few KiB per shard). NULL on out of memory. */
struct mstore *mstore_new_sized(size_t max_bytes);

/* Evaluates q->lim[0..n) atomically (store.h semantics); fills the results and q->admitted.
 * Revocation is not known here: q->revoked is set to 0. */
void mstore_rl(struct mstore *m, int64_t now, struct store_rlq *q);
/* One hit on a policy (count: failures, probes). Returns the count after the hit. */
int64_t mstore_hit(struct mstore *m, int64_t now, const struct store_limit *l);

void mstore_lockout_check(struct mstore *m, int64_t now, struct store_lockq *q);
/* Returns the lock now in force (ms, 0 when none). */
int64_t mstore_lockout_fail(struct mstore *m, int64_t now, const char *key, size_t klen,
    int64_t after, int64_t base_ms, int64_t max_ms);
void mstore_lockout_ok(struct mstore *m, const char *key, size_t klen);

/* Counts a probe (key = "visor:probe:<ip>") and bans ban_key ("visor:ban:<ip>") until
 * now + ban_for_ms when the count reaches ban_after. Returns 1 when this probe banned. */
int  mstore_probe(struct mstore *m, int64_t now, const char *key, size_t klen,
    const char *ban_key, size_t ban_klen, int64_t ban_after, int64_t ban_for_ms);
/* Bans until `until` (keeps a later existing ban). */
void mstore_ban(struct mstore *m, int64_t now, const char *key, size_t klen, int64_t until);
/* 1 when key is banned at now (*until set), else 0. Cheap when nothing is banned. */
int  mstore_banned(struct mstore *m, int64_t now, const char *key, size_t klen, int64_t *until);

/* Introspection for tests: live entries and accounted bytes. */
size_t mstore_entries(struct mstore *m);
/* Forgets every entry (tests and fuzzing start each case from an empty store). */
void   mstore_clear(struct mstore *m);
size_t mstore_bytes(struct mstore *m);

/* The lock after `fails` failures: 0 below `after`, then base doubled per failure past
 * `after`, capped at max. Shared with the Lua script's loop; exposed for tests. */
int64_t lockout_lock_ms(int64_t fails, int64_t after, int64_t base_ms, int64_t max_ms);

#endif
