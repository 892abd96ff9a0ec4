#!/usr/bin/python3
"""Runs the examples of README.md, so the documentation cannot drift.

Every ```sql block runs, in order, in one sqlite3 shell session started in a
scratch directory that holds links to the repository's data/, libaesql.so
and build/vec0.so (state carries over from block to block, as for a reader who
types them in). When a ```sql block is followed by an ```output block, the
block's output (stdout and stderr, as the shell prints them) must match it:
integers and text exactly, numbers with a decimal point within a relative
2% (training results vary in their last digits between CPUs whose BLAS
kernels differ), after dropping the shell's " near line N" from errors.
Every ```python block runs with Debian's python3 in the same directory,
with its ```output checked the same way.

Prints "ok - ..." / "not ok - ..." lines, one per block.
"""
import os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = re.compile(r'-?\d+\.\d+(?:[eE][-+]?\d+)?')

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
    g = [l.rstrip() for l in got.strip('\n').split('\n')]
    w = [l.rstrip() for l in want.strip('\n').split('\n')]
    if len(g) != len(w):
        return False
    for a, b in zip(g, w):
        a = re.sub(r' near line \d+', '', a)
        if NUM.sub('#', a) != NUM.sub('#', b):
            return False
        for x, y in zip(NUM.findall(a), NUM.findall(b)):
            x, y = float(x), float(y)
            if abs(x - y) > 0.02 * max(abs(x), abs(y)) + 1e-9:
                return False
    return True

def main():
    text = open(os.path.join(ROOT, 'README.md')).read()
    bl = blocks(text)
    work = tempfile.mkdtemp(prefix='aesql-readme-')
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
    run = subprocess.run(['stdbuf', '-oL', 'sqlite3', os.path.join(work, 'mnist.db')],
                         input=script, cwd=work, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=1800)
    outs = re.split(r'^@@(\d+|end)@@\n?', run.stdout, flags=re.M)
    byline = {}
    for j in range(1, len(outs) - 1, 2):
        byline[outs[j]] = outs[j + 1]
    fail = 0
    show = '--show' in sys.argv
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
