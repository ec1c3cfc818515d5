# visor — build, run, test.  `make run` and `make test` do their own set-up on Debian 12.
# Objects go to $(B)/ so a sanitizer build ($(B)=build-asan) never mixes with the normal one.

CC      ?= cc
B       ?= build
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
PKGS    := libevent libevent_pthreads openssl jansson hiredis yaml-0.1 libnghttp2

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wcast-qual -Wformat=2 -Wundef -Wno-unused-parameter
OPT     ?= -O2 -g
SAN     ?=
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -pthread $(OPT) $(SAN) -fno-strict-aliasing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS += -iquote src -I$(LLHTTP_INC) $(PKG_CFLAGS) \
            -DVISOR_VERSION='"$(VERSION)"'
LDLIBS  += $(PKG_LIBS) -lpthread -lm
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

# One folder per layer (docs/architecture.md); everything but core/main.c goes into libvisor.a,
# which the binary, the unit tests and the fuzzers link.
SRCS    := $(filter-out src/core/main.c,$(wildcard src/*/*.c))
OBJS    := $(SRCS:src/%.c=$(B)/%.o)
HDRS    := $(wildcard src/*/*.h)
LLOBJS  := $(B)/llhttp/llhttp.o $(B)/llhttp/api.o $(B)/llhttp/http.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

.PHONY: all asan tsan visor-tsan deps run test unit integration bench fuzz soak lint clean container-test docs valgrind

all: visor

visor: $(B)/core/main.o $(B)/libvisor.a $(B)/libllhttp.a
	$(CC) $(CFLAGS_BASE) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(B)/libvisor.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

# llhttp comes from Debian's node-llhttp (never vendored); strict mode rejects the
# lax shapes Node's default build tolerates, so visor refuses before Node could disagree.
$(B)/libllhttp.a: $(LLOBJS)
	@rm -f $@
	ar rcs $@ $^
$(B)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	$(CC) -std=c11 $(OPT) $(SAN) -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) -w -c -o $@ $<

# the Lua script is assembled into its object (.incbin), so it is a dependency of it
$(B)/store/store_lua.o: src/store/store.lua

$(B)/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(WARN) $(CPPFLAGS) -c -o $@ $<

# Sanitizer build: the same sources, objects under build-asan/, binary ./visor-asan.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan:
	$(MAKE) B=build-asan SAN="$(ASAN_FLAGS)" OPT="-O1 -g" build-asan/core/main.o build-asan/libvisor.a build-asan/libllhttp.a
	$(CC) -std=c11 -pthread $(ASAN_FLAGS) -o visor-asan build-asan/core/main.o build-asan/libvisor.a build-asan/libllhttp.a $(LDLIBS)

# ThreadSanitizer build: objects under build-tsan/, binary ./visor-tsan; `make tsan` runs the
# integration suite against it and fails on any report (tests/tsan.supp: library internals
# only, each justified there).
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
visor-tsan:
	$(MAKE) B=build-tsan SAN="$(TSAN_FLAGS)" OPT="-O1 -g" build-tsan/core/main.o build-tsan/libvisor.a build-tsan/libllhttp.a
	$(CC) -std=c11 -pthread $(TSAN_FLAGS) -o visor-tsan build-tsan/core/main.o build-tsan/libvisor.a build-tsan/libllhttp.a $(LDLIBS)

tsan:
	@tests/tools/install-deps.sh test
	@$(MAKE) --no-print-directory visor-tsan
	@VISOR_BIN=./visor-tsan TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=0 second_deadlock_stack=1 history_size=4" tests/integration/run.sh

deps:
	@tests/tools/install-deps.sh test

# ---- run: everything a newcomer needs, then visor in the foreground ----------
run:
	@tests/tools/install-deps.sh run
	@$(MAKE) --no-print-directory visor
	@tests/tools/dev-setup.sh
	@tests/tools/run-dev.sh

# ---- tests -----------------------------------------------------------------
$(B)/tests/%: tests/unit/%.c tests/unit/t.h $(B)/libvisor.a $(B)/libllhttp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(WARN) -Wno-missing-prototypes $(CPPFLAGS) -Itests/unit -o $@ $< $(B)/libvisor.a $(B)/libllhttp.a $(LDLIBS)

unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

integration: visor
	@tests/integration/run.sh

# Unit tests, then integration tests; both always run, and the target fails when either
# does. The last lines are node's summary counts and the C tests' `N passed, N failed`.
test:
	@tests/tools/install-deps.sh test
	@$(MAKE) --no-print-directory visor $(UNIT_BINS)
	@tests/run-all.sh $(UNIT_BINS)

valgrind: visor
	@VISOR_WRAP="valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --quiet" tests/integration/run.sh

# visor vs nginx (plain TLS proxying, memory), then the policy runs: rate limits vs none,
# JWT-protected vs open. Each prints its own ratios.
bench:
	@tests/tools/install-deps.sh bench
	@$(MAKE) --no-print-directory visor
	@tests/bench/run.sh
	@if [ -x tests/bench/ratelimit.sh ]; then tests/bench/ratelimit.sh; fi
	@if [ -x tests/bench/jwt.sh ]; then tests/bench/jwt.sh; fi

fuzz:
	@tests/tools/install-deps.sh fuzz
	@tests/fuzz/run.sh

soak:
	@tests/tools/install-deps.sh bench
	@$(MAKE) --no-print-directory visor
	@tests/bench/soak.sh

# docs/configuration.md is generated from the parser's table (visor --config-reference).
docs: visor
	@{ cat docs/configuration.head.md; ./visor --config-reference; } > docs/configuration.md
	@echo "docs/configuration.md regenerated"

container-test:
	@tests/container/run.sh

# Banned functions (curl checksrc, relayd): unbounded copies and unchecked numbers.
lint:
	@! grep -nE '\b(atoi|atol|sprintf|vsprintf|strcpy|strcat|strtok|gets)\s*\(' src/*/*.c src/*/*.h || { echo "lint: banned function"; exit 1; }
	@echo "lint: ok"

clean:
	rm -rf build build-asan build-tsan visor visor-asan visor-tsan
