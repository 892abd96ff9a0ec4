#!/usr/bin/python3
"""Runs the examples of README.md, so the documentation cannot drift.

Every ```sql block runs, in order, in one sqlite3 shell session started in a
scratch directory that holds links to the repository's data/, libaesql.so
and build/vec0.so (state carries over from block to block, as for a reader who
types them in). When a ```sql block is followed by an ```output block, the
block's output (stdout and stderr, as the shell prints them) must match it:
integers and text exactly, numbers with a decimal point within a relative
2% (training results vary in their last digits between CPUs whose BLAS
kernels differ). The README shows errors as Debian 12's shell (3.40)
prints them, "Runtime error: ..."; newer shells print "Error: ..." or
"Error near line N: ...", so on both sides a shell error's prefix is
reduced to "Error: " ("Parse error: " for parse errors, the same in
every version) before comparing.
Every ```python block runs with Debian's python3 in the same directory,
with its ```output checked the same way.

  tests/readme_test.py [--sqlite3 SHELL] [--no-python] [--show]

--sqlite3 runs the sql blocks in another shell than the sqlite3 on the
PATH (tests/run.sh: a current SQLite's); --no-python skips the python
blocks (Python's sqlite3 module uses the system's SQLite whatever the
shell); --show prints each block's output instead of checking it. The
scratch directory is removed at the end, also on failure.

Prints "ok - ..." / "not ok - ..." lines, one per block.
"""
import os, re, shutil, signal, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = re.compile(r'-?\d+\.\d+(?:[eE][-+]?\d+)?')
# The shell's prefix of an error: 3.40 "Runtime error near line N: ",
# 3.44+ "Error near line N: ", either "Error: " for a command-line SQL.
SHELL_ERROR = re.compile(r'^(Runtime error|Error|Parse error)(?: near line \d+)?: ')

def plain_error(line):
    """line with a shell error's prefix reduced to "Error: " / "Parse error: "."""
    return SHELL_ERROR.sub(lambda m: ('Parse error' if m.group(1) == 'Parse error'
                                      else 'Error') + ': ', line)

def blocks(text):
    """(lang, code, line) for every fenced block."""
    out, lines, i = [], text.split('\n'), 0
    while i < len(lines):
        m = re.match(r'^```(\w*)\s*$', lines[i])
        if m:
            lang, start, body = m.group(1), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith('```'):
                body.append(lines[i]); i += 1
            out.append((lang, '\n'.join(body), start))
        i += 1
    return out

def same(got, want):
    g = [plain_error(l.rstrip()) for l in got.strip('\n').split('\n')]
    w = [plain_error(l.rstrip()) for l in want.strip('\n').split('\n')]
    if len(g) != len(w):
        return False
    for a, b in zip(g, w):
        if NUM.sub('#', a) != NUM.sub('#', b):
            return False
        for x, y in zip(NUM.findall(a), NUM.findall(b)):
            x, y = float(x), float(y)
            if abs(x - y) > 0.02 * max(abs(x), abs(y)) + 1e-9:
                return False
    return True

def main():
    args = sys.argv[1:]
    shell = 'sqlite3'
    if '--sqlite3' in args:
        k = args.index('--sqlite3')
        if k + 1 >= len(args):
            print('readme_test.py: --sqlite3 needs a path', file=sys.stderr)
            return 2
        shell = os.path.abspath(args[k + 1])
        del args[k:k + 2]
    for a in args:
        if a not in ('--show', '--no-python'):
            print("readme_test.py: unknown argument '%s'" % a, file=sys.stderr)
            return 2
    # SIGTERM and SIGHUP end the run through the finally below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, f: sys.exit(128 + n))
    work = tempfile.mkdtemp(prefix='aesql-readme-')
    try:
        return run_blocks(work, shell, '--show' in args, '--no-python' in args)
    finally:
        shutil.rmtree(work, ignore_errors=True)

def run_blocks(work, shell, show, no_python):
    text = open(os.path.join(ROOT, 'README.md')).read()
    bl = blocks(text)
    version = subprocess.run([shell, '--version'], stdout=subprocess.PIPE,
                             text=True).stdout.split(' ')[0]
    print('# sql blocks in %s (SQLite %s)' % (shell, version))
    os.symlink(os.path.join(ROOT, 'data'), os.path.join(work, 'data'))
    os.symlink(os.path.join(ROOT, 'libaesql.so'), os.path.join(work, 'libaesql.so'))
    # sqlite-vec's loadable, which `make vec` puts in build/ ("Similar images").
    os.mkdir(os.path.join(work, 'build'))
    os.symlink(os.path.join(ROOT, 'build', 'vec0.so'), os.path.join(work, 'build', 'vec0.so'))
    # All sql blocks in one session, with markers between them.
    sql, checks = [], []
    for k, (lang, code, line) in enumerate(bl):
        if lang != 'sql':
            continue
        want = bl[k + 1][1] if k + 1 < len(bl) and bl[k + 1][0] == 'output' else None
        sql.append('.print @@%d@@\n%s\n' % (line, code))
        checks.append((line, code, want))
    script = ''.join(sql) + '.print @@end@@\n'
    # stdbuf: line-buffered stdout, so the shell's errors (stderr) land in
    # place among its results.
    run = subprocess.run(['stdbuf', '-oL', shell, os.path.join(work, 'mnist.db')],
                         input=script, cwd=work, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=1800)
    outs = re.split(r'^@@(\d+|end)@@\n?', run.stdout, flags=re.M)
    byline = {}
    for j in range(1, len(outs) - 1, 2):
        byline[outs[j]] = outs[j + 1]
    fail = 0
    for line, code, want in checks:
        got = byline.get(str(line), '')
        if show:
            print('=== line %d\n%s\n--- output\n%s' % (line, code, got))
            continue
        name = 'README.md line %d: %s' % (line, code.strip().split('\n')[0][:60])
        if want is None:
            if 'error' in got.lower():
                print('not ok - %s: unexpected error\n%s' % (name, got))
            else:
                print('ok - ' + name)
            continue
        if same(got, want):
            print('ok - ' + name)
        else:
            fail += 1
            print('not ok - %s\n--- got\n%s\n--- want\n%s' % (name, got, want))
    if '@@end@@' not in run.stdout:
        print('not ok - README.md: the session did not reach its end\n' + run.stdout[-2000:])
    if show:
        return 0
    if no_python:
        print('# python blocks skipped (--no-python)')
        return 0
    # Python blocks.
    for k, (lang, code, line) in enumerate(bl):
        if lang != 'python':
            continue
        want = bl[k + 1][1] if k + 1 < len(bl) and bl[k + 1][0] == 'output' else None
        r = subprocess.run(['/usr/bin/python3', '-c', code], cwd=work,
                           capture_output=True, text=True, timeout=1800)
        name = 'README.md line %d: python' % line
        if r.returncode == 0 and (want is None or same(r.stdout, want)):
            print('ok - ' + name)
        else:
            print('not ok - %s (exit %d)\n%s%s' % (name, r.returncode, r.stdout, r.stderr))
    return 0

if __name__ == '__main__':
    sys.exit(main())
