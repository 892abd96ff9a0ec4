#!/usr/bin/python3
"""Runs README.md's code blocks of one language that tests/readme_test.py
does not run, because they need what another test sets up first (the Node.js
modules of `make node`, the Python package installed in a venv).

    /usr/bin/python3 tests/readme_blocks.py LANG DIR CMD...

Every ```LANG block runs as `CMD... FILE` in DIR, FILE holding the block's
code; when an ```output block follows it, the output (stdout and stderr)
must match as readme_test.py matches (numbers with a decimal point within a
relative 2%). Prints one "ok - ..." / "not ok - ..." line per block, and
"not ok" when there is no such block at all.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from readme_test import ROOT, blocks, same  # noqa: E402

EXT = {'js': '.js', 'py': '.py'}


def main():
    lang, cwd, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    bl = blocks(open(os.path.join(ROOT, 'README.md')).read())
    n = 0
    for k, (lg, code, line) in enumerate(bl):
        if lg != lang:
            continue
        n += 1
        want = bl[k + 1][1] if k + 1 < len(bl) and bl[k + 1][0] == 'output' else None
        with tempfile.NamedTemporaryFile('w', suffix=EXT.get(lang, ''), dir=cwd,
                                         delete=False) as f:
            f.write(code + '\n')
        try:
            r = subprocess.run(cmd + [f.name], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=600)
        finally:
            os.unlink(f.name)
        name = 'README.md line %d: %s' % (line, lang)
        if r.returncode == 0 and (want is None or same(r.stdout, want)):
            print('ok - ' + name)
        else:
            print('not ok - %s (exit %d)\n--- got\n%s--- want\n%s'
                  % (name, r.returncode, r.stdout, want))
    if n == 0:
        print('not ok - README.md has a ```%s block' % lang)
    return 0


if __name__ == '__main__':
    sys.exit(main())
