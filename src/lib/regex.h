/* SPDX-License-Identifier: MIT
 * regex — the pattern engine of JSON Schema's "pattern" and "patternProperties": a subset of
 * ECMA-262 regular expressions (the `u` flag), compiled to a Pike VM program and searched
 * without ever backtracking. It answers one question, "does the pattern match anywhere in
 * the subject?" (RegExp.prototype.test), with no captures, so lazy quantifiers behave as
 * greedy ones and a named group is a plain group.
 *
 * Syntax accepted: alternation |, groups ( ) (?: ) (?<name> ), quantifiers * + ? {n} {n,}
 * {n,m} and their lazy forms, . [...] [^...] with ranges, \d \D \w \W \s \S, the assertions
 * ^ $ \b \B, the escapes \t \n \v \f \r \0 \cX \xHH \uHHHH (a surrogate pair written as two
 * is one code point) \u{H...} and an escaped syntax character ^ $ \ . * + ? ( ) [ ] { } | /
 * (and \- inside a class). No flags: matching is case-sensitive, ^ and $ match only at the
 * ends of the subject, . matches anything but \n \r U+2028 U+2029, \d \w \b are ASCII and
 * \s is ECMA-262's WhiteSpace and LineTerminator set.
 *
 * Refused, with a reason: backreferences (\1, \k<name>), lookahead and lookbehind, \p{...}
 * and \P{...}, octal escapes, what u mode calls a syntax error (a lone ] { or }, an unknown
 * identity escape, a class escape bounding a range, a range out of order, \B in a class,
 * nothing to repeat, a repeated assertion, unbalanced parentheses), invalid UTF-8, and what
 * is over the bounds below. The reasons are fixed strings that never quote the pattern.
 *
 * Cost: a search takes O(n x m) steps for n code points of subject and m instructions of
 * program (m <= REGEX_MAX_PROG once repetitions are expanded), whatever the pattern and the
 * subject: no input makes it backtrack. Each step is charged to the caller's budget, so a
 * caller bounds the work of a search, not only its order.
 *
 * Memory and threads: the program and the scratch live in the caller's arena and die with
 * it; compiling also uses temporary malloc'd memory, freed before it returns. A compiled
 * program is immutable: any number of threads may search it at once. A scratch is one
 * search's working state: one per thread, reused from search to search. No globals, no locks.
 */
#ifndef VISOR_REGEX_H
#define VISOR_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define REGEX_MAX_PATTERN 1024        /* pattern source, bytes */
#define REGEX_MAX_PROG    2048        /* compiled instructions */
#define REGEX_MAX_REPEAT  1000        /* the n and m of {n,m} */
#define REGEX_MAX_GROUPS  32          /* nesting of ( ) */

struct regex;            /* a compiled program */
struct regex_scratch;    /* the working state of one search */

/* Compiles `pat` (len bytes of UTF-8, need not be NUL-terminated; NUL is an ordinary one)
 * into a program allocated from `a`. Returns it, or NULL with *why set to a static reason
 * ("backreferences are not supported", "out of memory", ...). Any thread. */
struct regex *regex_compile(const char *pat, size_t len, struct arena *a, const char **why);

/* Instructions in `re` (1 to REGEX_MAX_PROG): a scratch made for this size or more can
 * search it. */
uint32_t regex_size(const struct regex *re);

/* A scratch for programs of up to `size` instructions, from `a` (16 x size bytes). NULL on
 * out of memory. */
struct regex_scratch *regex_scratch_new(struct arena *a, uint32_t size);

/* Searches subject s[0..n) (UTF-8; each byte of an invalid sequence reads as U+FFFD) for a
 * match of `re` anywhere, with `sc` (made for regex_size(re) or more, not in use by another
 * search). Each thread step takes one unit from *budget, which never goes below 0. Returns
 * 1 match, 0 no match, -1 when the budget ran out before the answer (*budget is then 0).
 * The last units may go to the answer itself: a caller that wants a strict bound treats a
 * budget left at 0 as run out whatever the answer (jschema does). */
int regex_search(const struct regex *re, struct regex_scratch *sc, const char *s, size_t n,
    uint64_t *budget);

#endif
