# moestream: one plain Makefile.  Objects go to build/, the binary to ./moestream.
# Targets: all (default: binary and libraries), lib, install, deps, test-deps, test, asan,
# tsan, fuzz, bench, format, clean.

# The last line of `make test` is the suite's "N passed, N failed, N skipped" summary, not
# a recursive make's "Leaving directory".
MAKEFLAGS += --no-print-directory

CC      ?= cc
# LIB_PKGS: what libmoestream itself needs; the front ends add the rest.
LIB_PKGS := liburing hwloc libpcre2-8 jansson openblas
PKGS    := $(LIB_PKGS) libmicrohttpd readline libcurl
# -ffp-contract=off: bit-exact tests against the scalar reference need IEEE
# semantics without silent FMA contraction.
CFLAGS_BASE := -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes \
               -ffp-contract=off -D_GNU_SOURCE -MMD -MP
# Every object is position-independent so one set builds both libraries, and
# hidden unless marked MS_API (include/moestream.h), so the shared library
# exports the public API and nothing else.
CFLAGS_BASE += -fPIC -fvisibility=hidden
CFLAGS_BASE += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Include paths.  io/ (pager, pool, ring, cache policy) knows files, not
# models: it is compiled with io/ alone on the path, so an include of
# src/ from there fails the build instead of making a cycle.
INCS    := -Iinclude -Isrc -Isrc/util -Isimd -Iio -Isrc/cli
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LIB_LIBS := $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null) -lpthread -lm
PREFIX  ?= /usr/local
SO_MAJOR := 0
SO_VERSION := 0.1
SONAME  := libmoestream.so.$(SO_MAJOR)
WERROR  ?=
SAN     ?=
BUILD   ?= build
CFLAGS  ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(INCS) $(WERROR) $(SAN) $(CFLAGS)
# The flags every object shares, fixed at parse time (target-specific INCS
# and CFLAGS below do not change it): objects depend on a stamp of them.
STAMP_FLAGS := $(CC) $(CFLAGS_BASE) $(INCS) $(WERROR) $(SAN) $(CFLAGS)

# One translation unit per ISA, compiled with its own flags; everything else
# targets the baseline so the binary runs on any x86-64 and picks at run time.
ISA_AVX2   := -mavx2 -mfma -mf16c -mbmi2
ISA_AVX512 := -mavx2 -mfma -mf16c -mbmi2 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512vbmi

# The library is the engine and text code; the command-line front end
# (src/cli/) and the HTTP server (src/server/) link into the binary only.
LIB_SRC  := $(filter-out simd/%_neon.c,$(wildcard src/*.c src/util/*.c io/*.c simd/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
IO_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard io/*.c))
$(IO_OBJ): INCS := -Iio
FRONT_SRC := $(wildcard src/cli/*.c src/server/*.c src/tools/*.c)
FRONT_OBJ := $(FRONT_SRC:%.c=$(BUILD)/%.o)
# The front ends see the public API, their own folder and src/util/ (plain
# helpers with no engine knowledge, built into the library: strbuf, the
# OpenAI request parser) - not the engine's headers, so including one fails
# the build (tests/front_boundary.sh).  src/tools/ (synth, quantize, replay:
# offline tools that write GGUF files or simulate the expert cache policies,
# not users of a loaded engine) keep the engine's include paths.
CLI_INCS    := -Iinclude -Isrc/cli -Isrc/util
# The server also parses the command line's shared options (cli.h: the same
# flags and --config profiles as every command), so it sees src/cli/'s
# headers too; both folders are held to the public API.
SERVER_INCS := -Iinclude -Isrc/server -Isrc/cli -Isrc/util
$(patsubst %.c,$(BUILD)/%.o,$(wildcard src/cli/*.c)): INCS := $(CLI_INCS)
$(patsubst %.c,$(BUILD)/%.o,$(wildcard src/server/*.c)): INCS := $(SERVER_INCS)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 600
FUZZ_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer

.PHONY: FORCE print-front all lib install deps test-deps test asan tsan tsan-run fuzz fuzz-bin bench format clean tests-bin moestream neon-test
all: moestream lib

# ./moestream is the default build; sanitizer builds get $(BUILD)/moestream.
# In the default build it is a plain prerequisite: a sub-make there would
# race another goal of the same command line (`make -j2 moestream
# tests-bin`) on build/libmoestream.a.
ifeq ($(BUILD),build)
moestream: build/moestream
	cp build/moestream moestream
else
moestream:
	$(MAKE) BUILD=build build/moestream
	cp build/moestream moestream
endif

# --version: the version and `git describe` of the tree built ("unknown"
# outside git).  The stamp file changes only when the description does, so
# main.o is rebuilt then and only then.
VERSION    := 0.1.0
GIT_COMMIT := $(shell git describe --always --dirty --tags 2>/dev/null || echo unknown)
$(BUILD)/git-commit: FORCE
	@mkdir -p $(dir $@)
	@echo '$(GIT_COMMIT)' | cmp -s - $@ || echo '$(GIT_COMMIT)' > $@
$(BUILD)/src/cli/main.o: $(BUILD)/git-commit
$(BUILD)/src/cli/main.o: ALL_CFLAGS += -DMS_VERSION='"$(VERSION)"' -DMS_GIT_COMMIT='"$(GIT_COMMIT)"'
FORCE:

$(BUILD)/moestream: $(FRONT_OBJ) $(BUILD)/libmoestream.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libmoestream.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library: the same objects, the public API exported (checked by
# tests/embed_install_slow.sh with nm -D), a soname for ABI versions.
$(BUILD)/libmoestream.so.$(SO_VERSION): $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^ $(LIB_LIBS)

$(BUILD)/libmoestream.so: $(BUILD)/libmoestream.so.$(SO_VERSION)
	ln -sf libmoestream.so.$(SO_VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/moestream.pc: configs/moestream.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(SO_VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(LIB_LIBS)|' configs/moestream.pc.in > $@

lib: $(BUILD)/libmoestream.a $(BUILD)/libmoestream.so

# make && make install PREFIX=/opt/moestream [DESTDIR=...]: binary, both
# libraries, the header, the pkg-config file and the hardware profiles.
# Installs what `make` built (it does not rebuild with other flags).
install:
	@for f in moestream libmoestream.a libmoestream.so.$(SO_VERSION); do \
	  [ -f $(BUILD)/$$f ] || { echo "install: $(BUILD)/$$f missing: run make first"; exit 1; }; done
	@rm -f $(BUILD)/moestream.pc
	$(MAKE) $(BUILD)/moestream.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/share/moestream/configs
	install -m 755 $(BUILD)/moestream $(DESTDIR)$(PREFIX)/bin/moestream
	install -m 644 $(BUILD)/libmoestream.a $(DESTDIR)$(PREFIX)/lib/libmoestream.a
	install -m 755 $(BUILD)/libmoestream.so.$(SO_VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libmoestream.so.$(SO_VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libmoestream.so
	install -m 644 include/moestream.h $(DESTDIR)$(PREFIX)/include/moestream.h
	install -m 644 $(BUILD)/moestream.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/moestream.pc
	install -m 644 configs/*.conf $(DESTDIR)$(PREFIX)/share/moestream/configs/

# Objects depend on the flags they were built with, so a changed flag (here
# or on the command line) rebuilds them; the stamp only changes with them.
$(BUILD)/.cflags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(STAMP_FLAGS)' | cmp -s - $@ || echo '$(STAMP_FLAGS)' > $@
FORCE:

$(BUILD)/%_avx2.o: %_avx2.c $(BUILD)/.cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ISA_AVX2) -c -o $@ $<

$(BUILD)/%_avx512.o: %_avx512.c $(BUILD)/.cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ISA_AVX512) -c -o $@ $<

# The weight quantizers are the reference's search loops, compiled at -O3 as
# the reference compiles them (float semantics are unchanged: no fast-math,
# no contraction, baseline ISA).
$(BUILD)/simd/quantize.o: CFLAGS += -O3

$(BUILD)/%.o: %.c $(BUILD)/.cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libmoestream.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libmoestream.a $(LIBS) -lcmocka

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmoestream.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libmoestream.a $(LIBS)

# For tests/front_boundary.sh: the include paths and the files held to them.
print-front:
	@echo 'CLI_INCS=$(CLI_INCS)'
	@echo 'SERVER_INCS=$(SERVER_INCS)'
	@echo 'FRONT_CLEAN=$(wildcard src/cli/*.c src/server/*.c)'

tests-bin: $(BUILD)/moestream $(TEST_BIN) $(BUILD)/libmoestream.so

# The Debian packages building and running need (lean: the README's first
# command); test-deps adds what the test suite needs (cross compiler, qemu,
# clang, node client, curl, tmux, ...).  Both are safe to run twice.
deps:
	./configs/install-deps.sh

test-deps:
	./configs/install-deps.sh --test

# Warnings are errors here and in CI.  The suite runs on the default build,
# then the fast tests again under ASan+UBSan, then the threaded ones under
# TSan; each run ends with the runner's "N passed, N failed, N skipped" line,
# the last one summing all three.  Tests whose golden set or tool is missing
# are skipped (failed when CI is set).
test: test-deps
	$(MAKE) WERROR=-Werror tests-bin moestream
	MOESTREAM_SUMMARY=$(CURDIR)/build/summary ./tests/run_tests.sh build
	$(MAKE) asan-run MOESTREAM_PRIOR=$(CURDIR)/build/summary MOESTREAM_SUMMARY=$(CURDIR)/build/summary-asan
	$(MAKE) tsan-run MOESTREAM_PRIOR=$(CURDIR)/build/summary-asan

# NEON kernels vs scalar, cross-compiled and run under qemu-aarch64 with and
# without dotprod; part of `make test` through tests/run_tests.sh.
neon-test:
	./tests/neon_qemu.sh

# Address + undefined-behaviour sanitizers over the fast tests.
asan:
	$(MAKE) asan-run

asan-run:
	$(MAKE) BUILD=build-asan WERROR=-Werror SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" tests-bin
	MOESTREAM_FAST=1 MOESTREAM_LABEL=asan ./tests/run_tests.sh build-asan

# libFuzzer harnesses (clang): the library built with coverage
# instrumentation, one binary per harness.  `make fuzz` runs each for
# FUZZ_SECONDS; `make test` runs them briefly (tests/fuzz_slow.sh).
fuzz-bin:
	$(MAKE) BUILD=build-fuzz CC=clang SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" build-fuzz/libmoestream.a
	$(MAKE) $(FUZZ_BIN)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libmoestream.a
	clang $(CFLAGS_BASE) $(INCS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< build-fuzz/libmoestream.a $(LIBS)

fuzz: fuzz-bin
	for f in $(FUZZ_BIN); do n=$$(basename $$f | sed 's/fuzz_//'); mkdir -p build-fuzz/corpus-$$n; \
	  d=; [ -f tests/fuzz/$$n.dict ] && d=-dict=tests/fuzz/$$n.dict; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 $$d build-fuzz/corpus-$$n tests/fuzz/corpus/$$n \
	  2>&1 | tail -3; done

tsan:
	$(MAKE) BUILD=build-tsan WERROR=-Werror SAN="-fsanitize=thread" tests-bin
	MOESTREAM_FAST=1 ./tests/run_tests.sh build-tsan

# The part of `make test` under TSan: the tests whose code shares memory
# between threads (thread pool fork/join, the pager feeding the threaded MoE
# step, the golden forward pass at several thread counts); about 3 minutes
# here (2 cores).  Reports fail the test (TSan exits 66), none are suppressed.
TSAN_TESTS := test_threadpool test_pager test_golden
tsan-run:
	$(MAKE) BUILD=build-tsan WERROR=-Werror SAN="-fsanitize=thread" build-tsan/moestream $(TSAN_TESTS:%=build-tsan/tests/%)
	MOESTREAM_FAST=1 MOESTREAM_LABEL=tsan MOESTREAM_ONLY="$(TSAN_TESTS)" ./tests/run_tests.sh build-tsan

bench: moestream $(BENCH_BIN)
	./bench/run_bench.sh $(BUILD)

format:
	clang-format -i $(wildcard src/*.[ch] src/cli/*.[ch] src/server/*.[ch] src/tools/*.c src/util/*.[ch] io/*.[ch] simd/*.[ch] include/*.h tests/*.c bench/*.c)

clean:
	rm -rf build build-asan build-tsan build-fuzz moestream

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
