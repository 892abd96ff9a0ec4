"""Builds the aesql Python package: libaesql, the SQLite loadable extension,
compiled from the repository's C sources into aesql/libaesql.so.

    pip install --no-build-isolation --no-index ./python     # from the repository
    python3 setup.py sdist                                   # a self-contained sdist

Where the sources are: in the repository they are ../ext and ../include,
used in place (nothing is committed twice). An sdist cannot reach outside
its own directory, so the sdist command below copies ext/ and include/ into
the archive, and a build from an unpacked sdist finds them next to this file.

The library is built as the Makefile's `libaesql.so` rule builds it (same
sources, -std=gnu11 -fno-math-errno -fvisibility=hidden, linked with
-lz -lm -ldl -lpthread and no undefined symbols), on top of the flags Python
itself compiles extensions with. It is a plain shared library, not a CPython
module: SQLite loads it, Python never imports it, so its name is fixed
(libaesql.so, whose entry point SQLite derives: sqlite3_aesql_init).
Needs a C compiler and the headers of SQLite and zlib (Debian: gcc,
libsqlite3-dev, zlib1g-dev); OpenBLAS is opened at run time.
"""
import glob
import os
import re
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))


def source_root():
    """The directory holding ext/ and include/: this one in an sdist, the
    repository's root otherwise."""
    for root in (HERE, os.path.dirname(HERE)):
        if os.path.isfile(os.path.join(root, 'ext', 'sql', 'aesql.c')) and \
           os.path.isfile(os.path.join(root, 'include', 'aesql.h')):
            return root
    raise SystemExit('aesql: no ext/sql/aesql.c and include/aesql.h in %s or its parent; '
                     'build from the libaesql repository or from its sdist' % HERE)


ROOT = source_root()


def rel(path):
    """setuptools wants paths relative to this file's directory."""
    return os.path.relpath(path, HERE)


def version():
    with open(os.path.join(ROOT, 'include', 'aesql.h')) as f:
        m = re.search(r'^#define AESQL_VERSION "([^"]+)"', f.read(), re.M)
    if not m:
        raise SystemExit('aesql: no AESQL_VERSION in include/aesql.h')
    return m.group(1)


class BuildLoadable(build_ext):
    """build_ext, but the output is named libaesql.so, not
    libaesql.cpython-311-x86_64-linux-gnu.so."""

    def get_ext_filename(self, fullname):
        return os.path.join(*fullname.split('.')) + '.so'

    def build_extension(self, ext):
        # Objects of ../ext/x.c go to <build_temp>/../ext/x.o: the path only
        # resolves once build_temp exists.
        os.makedirs(self.build_temp, exist_ok=True)
        super().build_extension(ext)


class SdistWithSources(sdist):
    """An sdist that carries ext/ and include/ inside it."""

    def make_release_tree(self, base_dir, files):
        # The file list names the repository's sources as ../ext/...: copy them
        # under the archive's own directory instead of outside it.
        super().make_release_tree(base_dir, [f for f in files if not f.startswith('..')])
        if ROOT == HERE:
            return
        for sub, pattern in (('ext/core', '*.[ch]'), ('ext/io', '*.[ch]'),
                             ('ext/sql', '*.[ch]'), ('include', 'aesql.h')):
            os.makedirs(os.path.join(base_dir, sub), exist_ok=True)
            for f in sorted(glob.glob(os.path.join(ROOT, sub, pattern))):
                shutil.copy2(f, os.path.join(base_dir, sub))


os.chdir(HERE)
sources = sorted(glob.glob(os.path.join(ROOT, 'ext', '*', '*.c')))
headers = sorted(glob.glob(os.path.join(ROOT, 'ext', '*', '*.h'))) + \
    [os.path.join(ROOT, 'include', 'aesql.h')]

setup(
    name='aesql',
    version=version(),
    description='libaesql: autoencoders trained and scored inside SQLite (a loadable extension)',
    long_description=__doc__,
    long_description_content_type='text/plain',
    packages=['aesql'],
    python_requires='>=3.8',
    ext_modules=[Extension(
        'aesql.libaesql',
        sources=[rel(s) for s in sources],
        depends=[rel(h) for h in headers],
        include_dirs=[rel(os.path.join(ROOT, 'include'))],
        extra_compile_args=['-std=gnu11', '-fno-math-errno', '-fvisibility=hidden',
                            '-Wextra', '-Wshadow'],
        libraries=['z', 'm', 'dl', 'pthread'],
        extra_link_args=['-Wl,--no-undefined', '-Wl,-z,defs'],
    )],
    cmdclass={'build_ext': BuildLoadable, 'sdist': SdistWithSources},
    zip_safe=False,
)
