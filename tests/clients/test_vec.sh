#!/bin/sh
# libaesql's codes in sqlite-vec (README: "Similar images"), with the
# prebuilt loadable of sqlite-vec's npm package that `make vec` extracts into
# build/vec0.so. On the tutorial's model trained for 2 epochs: vec0's nearest
# neighbours and distances equal a brute-force search over the ae_encode
# BLOBs decoded here; the share of each image's 10 nearest neighbours that
# are the same digit, over 3,000 test codes (82.3% for the 50-epoch model in
# the README); the nearest normal neighbours of the most anomalous image and
# the picture the README composes of them. Run from the repository's root
# after `make` and `make data` (tests/run.sh does).
ok()  { echo "ok - $1"; }
bad() { echo "not ok - $1"; }
tmp=$(mktemp -d /tmp/aesql-vec-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if make -s vec > "$tmp/make.out" 2>&1 && [ -f build/vec0.so ]; then
  ok "make vec extracts build/vec0.so from sqlite-vec-linux-x64 (sha256 checked)"
else
  bad "make vec extracts build/vec0.so"; cat "$tmp/make.out"; exit 1
fi

/usr/bin/python3 - "$tmp" <<'PY'
import math, os, sqlite3, struct, sys, time, zlib
tmp = sys.argv[1]
def check(cond, name):
    print(('ok - ' if cond else 'not ok - ') + name)

con = sqlite3.connect(os.path.join(tmp, 'vec.db'))
con.enable_load_extension(True)
con.load_extension('./libaesql')
con.load_extension('./build/vec0')
con.enable_load_extension(False)
one = lambda sql, *a: con.execute(sql, a).fetchone()
check(one('SELECT vec_version()')[0] == 'v0.1.9', 'vec_version() is v0.1.9')

con.executescript("""
CREATE VIRTUAL TABLE temp.mnist_train USING idx(images='data/mnist/train-images-idx3-ubyte');
CREATE VIRTUAL TABLE temp.mnist_test USING idx(images='data/mnist/t10k-images-idx3-ubyte',
                                               labels='data/mnist/t10k-labels-idx1-ubyte');
""")
t0 = time.time()
model = one("""SELECT ae_train('mnist_train', 32, '{"epochs": 2, "seed": 1}')""")[0]
check(model == 'mnist_train_32', 'trained the tutorial model for 2 epochs (%.1f s)' % (time.time() - t0))

# The README's table: every test code, with class and error as metadata.
con.executescript("""
CREATE VIRTUAL TABLE temp.codes USING vec0(code float[32], class integer, error float);
INSERT INTO codes(rowid, code, class, error)
  SELECT t.rowid, ae_encode('mnist_train_32', t.pixels), t.class, s.error
    FROM mnist_test AS t JOIN ae_scores('mnist_train_32', 'mnist_test') AS s ON s.key = t.rowid;
""")
check(one('SELECT count(*) FROM codes')[0] == 10000, 'codes holds the 10000 test codes')
# What vec0 stored is what ae_encode gave, byte for byte.
same = one("""SELECT count(*) FROM codes AS c JOIN mnist_test AS t ON t.rowid = c.rowid
               WHERE c.code = ae_encode('mnist_train_32', t.pixels) AND c.rowid <= 100""")[0]
check(same == 100, 'vec0 returns the ae_encode BLOBs unchanged (%d of 100)' % same)

# Brute force over the first 3,000 codes, decoded as little-endian float32.
rows = con.execute("""SELECT t.rowid, t.class, ae_encode('mnist_train_32', t.pixels)
                        FROM mnist_test AS t WHERE t.rowid <= 3000""").fetchall()
vecs = {r: struct.unpack('<32f', b) for r, _, b in rows}
label = {r: c for r, c, _ in rows}
check(all(math.isfinite(x) for v in vecs.values() for x in v), 'the 3000 codes are finite')
con.executescript("""
CREATE VIRTUAL TABLE temp.first3k USING vec0(code float[32], class integer);
INSERT INTO first3k(rowid, code, class) SELECT rowid, code, class FROM codes WHERE rowid <= 3000;
""")
knn = con.execute("""SELECT q.rowid, n.rowid, n.distance, n.class = q.class
                       FROM first3k AS q JOIN first3k AS n ON n.code MATCH q.code AND n.k = 11
                      WHERE n.rowid != q.rowid ORDER BY q.rowid, n.distance""").fetchall()
check(len(knn) == 30000, 'ten neighbours for each of the 3000 codes (%d rows)' % len(knn))
by_q = {}
for q, n, d, s in knn:
    by_q.setdefault(q, []).append((n, d))
worst, wrong = 0.0, 0
for q in range(1, 3001, 60):                    # 50 queries, checked exactly
    a = vecs[q]
    dist = sorted((math.sqrt(sum((x - y) ** 2 for x, y in zip(a, vecs[n]))), n)
                  for n in vecs if n != q)[:10]
    got = by_q[q]
    wrong += set(n for _, n in dist) != set(n for n, _ in got)
    worst = max([worst] + [abs(d - e) / max(d, 1e-9) for (d, _), (_, e) in zip(dist, got)])
check(wrong == 0 and worst < 1e-5,
      "vec0's 10 nearest of 50 codes are brute force's, distances within 1e-5 relative "
      '(%d differ, worst %.1e)' % (wrong, worst))
pct = 100.0 * sum(s for *_, s in knn) / len(knn)
recount = 100.0 * sum(label[n] == label[q] for q, ns in by_q.items() for n, _ in ns) / len(knn)
check(abs(pct - recount) < 1e-9, 'the same-digit share from SQL equals its recount (%.1f%%)' % pct)
# Chance is about 10%; the 50-epoch model gives 82.3% (README).
check(60 < pct < 90, "same digit among each code's 10 nearest neighbours: %.1f%% (want 60 to 90)" % pct)

# The README's query: the most anomalous image and its three nearest
# normal neighbours (error under 15), then the strip of the four.
con.executescript("""
CREATE TEMP VIEW odd AS SELECT rowid, code FROM codes ORDER BY error DESC LIMIT 1;
CREATE TEMP TABLE similar AS
  SELECT 0 AS i, rowid, class, 0.0 AS distance, error FROM codes WHERE rowid = (SELECT rowid FROM odd)
  UNION ALL
  SELECT row_number() OVER (ORDER BY distance), rowid, class, distance, error FROM codes
   WHERE code MATCH (SELECT code FROM odd) AND k = 3 AND error < 15;
CREATE TEMP TABLE strip AS
  WITH RECURSIVE cell(n, px) AS (
    SELECT 0, x''
    UNION ALL
    SELECT n + 1, px || substr(t.pixels, 28 * (n / 4) + 1, 28)
      FROM cell, similar AS s, mnist_test AS t
     WHERE n < 4 * 28 AND s.i = n % 4 AND t.rowid = s.rowid)
  SELECT CAST(px AS BLOB) AS px FROM cell WHERE n = 4 * 28;
""")
sim = con.execute('SELECT i, rowid, distance, error FROM similar ORDER BY i').fetchall()
top = one("SELECT key, error FROM ae_scores('mnist_train_32', 'mnist_test') ORDER BY error DESC LIMIT 1")
check(len(sim) == 4 and [s[0] for s in sim] == [0, 1, 2, 3], 'the anomaly and three neighbours')
check(sim[0][1] == top[0] and sim[0][3] == top[1],
      'image 0 is the one ae_scores ranks first (row %d, error %.2f)' % top)
check(all(s[3] < 15 for s in sim[1:]) and sim[1][2] <= sim[2][2] <= sim[3][2],
      'the neighbours have error under 15, nearest first (%s)'
      % ', '.join('row %d: %.2f' % (s[1], s[2]) for s in sim[1:]))
# Against a search of our own: the three nearest codes with error < 15.
errs = dict(con.execute('SELECT rowid, error FROM codes'))
allv = {r: struct.unpack('<32f', b) for r, b in con.execute('SELECT rowid, code FROM codes')}
a = allv[top[0]]
mine = sorted((math.sqrt(sum((x - y) ** 2 for x, y in zip(a, v))), r)
              for r, v in allv.items() if errs[r] < 15)[:3]
check([r for _, r in mine] == [s[1] for s in sim[1:]]
      and all(abs(d - s[2]) < 1e-5 * d for (d, _), s in zip(mine, sim[1:])),
      'the neighbours are the brute-force nearest normal codes')
px = one('SELECT px FROM strip')[0]
imgs = [one('SELECT pixels FROM mnist_test WHERE rowid = ?', s[1])[0] for s in sim]
want = b''.join(imgs[j][28 * y:28 * y + 28] for y in range(28) for j in range(4))
check(px == want, 'the strip is the four images side by side (%d bytes)' % len(px))
png = one('SELECT ae_png(px, 4 * 28, 28, 4) FROM strip')[0]
w, h = struct.unpack('>II', png[16:24])
idat = b''.join(png[i + 8:i + 8 + struct.unpack('>I', png[i:i + 4])[0]]
                for i in range(8, len(png)) if png[i + 4:i + 8] == b'IDAT')
raw = zlib.decompress(idat)
# 8-bit grey, no filter: each scanline is a 0 byte and 448 pixels.
rows_png = [raw[k * 449 + 1:(k + 1) * 449] for k in range(112)] if len(raw) == 112 * 449 else []
check((w, h) == (448, 112) and len(rows_png) == 112 and
      all(rows_png[k][::4] == px[112 * (k // 4):112 * (k // 4 + 1)] for k in range(112)),
      'its PNG is 448 x 112, the strip scaled by 4 (%d x %d)' % (w, h))
PY
