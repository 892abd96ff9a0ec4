#!/bin/sh
# Draws the README's charts from a libaesql database, with gnuplot.
#
#   sh sql/charts.sh DB [OUTDIR [MODEL]]
#
#   DB      a database holding the tables sql/tutorial.sql fills:
#             ae_history(model, epoch, loss, val_loss, seconds)
#             class_errors(class, avg_error)
#             roc(fpr, tpr), roc_summary(auroc, fpr_at_threshold, tpr_at_threshold)
#   OUTDIR  where the PNGs go (default: the current directory)
#   MODEL   whose training to draw (default: the only model in ae_history,
#           or the one whose rows were written last)
#
# Writes OUTDIR/training_curves.png (loss and val_loss per epoch, as Keras'
# plot(history)), OUTDIR/class_errors.png (average reconstruction error
# per digit class, a bar each) and OUTDIR/roc.png (the ROC curve of MNIST
# against Fashion-MNIST, from tables roc and roc_summary). The database is
# opened read-only.
# Needs the sqlite3 CLI and gnuplot (Debian: sqlite3, gnuplot-nox).
set -eu

me=charts.sh
die() { echo "$me: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 3 ] || die "usage: sh sql/charts.sh DB [OUTDIR [MODEL]]"
db=$1
outdir=${2:-.}
model=${3:-}
here=$(cd "$(dirname "$0")" && pwd)

command -v sqlite3 >/dev/null 2>&1 || die "no sqlite3; install it (apt-get install sqlite3)"
command -v gnuplot >/dev/null 2>&1 || die "no gnuplot; install it (apt-get install gnuplot-nox)"
# sqlite3 would create a missing database; we want to say it is missing.
[ -f "$db" ] || die "no database '$db'; run 'make demo' to make one"
[ -d "$outdir" ] || die "no directory '$outdir'; create it first"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aesql-charts.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

# Run SQL on the database, read-only, without a header, and without reading
# ~/.sqliterc, whose settings could change the output: q gives CSV (for
# gnuplot), v gives values as they are, separated by spaces.
q() { sqlite3 -init /dev/null -batch -bail -readonly -csv -noheader "$db" "$1"; }
v() { sqlite3 -init /dev/null -batch -bail -readonly -list -separator ' ' \
        -noheader "$db" "$1"; }
# A string in single quotes, inner ones doubled: a literal for SQL and
# for gnuplot alike.
squote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
has_table() {
  [ "$(v "SELECT count(*) FROM sqlite_schema WHERE name='$1' AND type IN ('table','view')")" = 1 ]
}

# pngcairo draws antialiased lines and text; the libgd png terminal is the
# fallback on a gnuplot built without cairo.
if gnuplot -e 'set terminal' 2>&1 | grep -q '^ *pngcairo '; then
  term=pngcairo
else
  term=png
fi

# draw OUT SCRIPT VARS: runs gnuplot's SCRIPT with VARS to write OUT; on a
# failure no half-written OUT is left behind.
draw() {
  gnuplot -e "term='$term'; out=$(squote "$1"); $3" "$here/$2" \
    || { rm -f "$1"; die "gnuplot failed to draw $1 with sql/$2"; }
}

status=0

# ---- training_curves.png ----
if ! has_table ae_history; then
  echo "$me: no table ae_history in '$db'; skipped training_curves.png" >&2
  status=1
else
  if [ -z "$model" ]; then
    # The only model; or, of several, the one with the newest row.
    if [ "$(v "SELECT count(DISTINCT model) FROM ae_history")" -le 1 ]; then
      model=$(v "SELECT model FROM ae_history WHERE model IS NOT NULL LIMIT 1")
    else
      model=$(v "SELECT model FROM ae_history WHERE model IS NOT NULL
                 ORDER BY rowid DESC LIMIT 1")
    fi
    [ -n "$model" ] || die "ae_history in '$db' is empty; train a model first"
  fi
  m=$(squote "$model")
  q "SELECT epoch, loss, val_loss FROM ae_history
     WHERE model=$m AND loss IS NOT NULL ORDER BY epoch" > "$tmp/history.csv"
  if [ ! -s "$tmp/history.csv" ]; then
    known=$(v "SELECT group_concat(model, ', ') FROM
               (SELECT DISTINCT model FROM ae_history ORDER BY model)")
    die "no epochs of model '$model' in ae_history; its models: ${known:-none}"
  fi
  # nval, last_loss, last_val, best_epoch, best_val: for the legend and label
  set -- $(v "SELECT
      (SELECT count(val_loss) FROM ae_history WHERE model=$m),
      (SELECT loss FROM ae_history WHERE model=$m AND loss IS NOT NULL
        ORDER BY epoch DESC LIMIT 1),
      coalesce((SELECT val_loss FROM ae_history WHERE model=$m
        AND val_loss IS NOT NULL ORDER BY epoch DESC LIMIT 1), -1),
      coalesce((SELECT epoch FROM ae_history WHERE model=$m
        AND val_loss IS NOT NULL ORDER BY val_loss, epoch LIMIT 1), 0),
      coalesce((SELECT min(val_loss) FROM ae_history WHERE model=$m), -1)")
  draw "$outdir/training_curves.png" training_curves.gp \
       "data=$(squote "$tmp/history.csv"); model=$(squote "$model");
        nval=$1; last_loss=$2; last_val=$3; best_epoch=$4; best_val=$5"
  echo "$me: wrote $outdir/training_curves.png (model '$model', $(wc -l < "$tmp/history.csv") epochs)"
fi

# ---- class_errors.png ----
if ! has_table class_errors; then
  echo "$me: no table class_errors in '$db'; skipped class_errors.png" >&2
  status=1
else
  q "SELECT class, avg_error FROM class_errors
     WHERE class IS NOT NULL AND avg_error IS NOT NULL ORDER BY class" \
    > "$tmp/classes.csv"
  [ -s "$tmp/classes.csv" ] || die "class_errors in '$db' is empty"
  mean=$(v "SELECT avg(avg_error) FROM class_errors WHERE class IS NOT NULL")
  draw "$outdir/class_errors.png" class_errors.gp \
       "data=$(squote "$tmp/classes.csv"); mean=$mean"
  echo "$me: wrote $outdir/class_errors.png ($(wc -l < "$tmp/classes.csv") classes)"
fi

# ---- roc.png ----
if ! has_table roc || ! has_table roc_summary; then
  echo "$me: no tables roc and roc_summary in '$db'; skipped roc.png" >&2
  status=1
else
  q "SELECT 0, 0 UNION ALL SELECT fpr, tpr FROM roc" > "$tmp/roc.csv"
  set -- $(v "SELECT auroc, fpr_at_threshold, tpr_at_threshold FROM roc_summary")
  [ $# -eq 3 ] || die "roc_summary in '$db' is empty"
  draw "$outdir/roc.png" roc.gp \
       "data=$(squote "$tmp/roc.csv"); auroc=$1; fpr0=$2; tpr0=$3"
  echo "$me: wrote $outdir/roc.png ($(wc -l < "$tmp/roc.csv") points)"
fi

exit $status
