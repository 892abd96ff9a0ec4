# The ROC curve of a detector, with the point its calibrated threshold
# picks. Run by sql/charts.sh, which sets with -e:
#   term   'pngcairo' or 'png'
#   data   CSV of fpr,tpr (ae_roc_curve's points, from the highest score)
#   out    the PNG to write
#   auroc  the area under the curve
#   fpr0, tpr0  the false-alarm rate and the detection rate at the threshold

if (term eq 'pngcairo') {
  set terminal pngcairo size 600,600 enhanced font 'DejaVu Sans,11' linewidth 1.2
} else {
  set terminal png size 600,600 enhanced font 'DejaVu Sans,11'
}
set termoption noenhanced
set encoding utf8
set output out
set datafile separator comma

set title 'MNIST (normal) against Fashion-MNIST (anomalies)' font ',13'
set xlabel 'false-alarm rate (MNIST test images flagged)'
set ylabel 'detection rate (Fashion-MNIST test images flagged)'
set border 3 linecolor rgb '#555555'
set tics nomirror textcolor rgb '#333333'
set grid xtics ytics linecolor rgb '#E5E5E5' linetype 1 linewidth 1
set xrange [0:1]
set yrange [0:1.02]
set size square
set key right bottom box linecolor rgb '#CCCCCC'

plot data using 1:2 with lines linewidth 2 linecolor rgb '#00A9B5' \
       title sprintf('ROC curve, AUROC %.3f', auroc), \
     x with lines dashtype 2 linecolor rgb '#AAAAAA' title 'chance', \
     '+' using (fpr0):(tpr0) every ::0::0 with points pointtype 7 pointsize 1.6 \
       linecolor rgb '#F8766D' \
       title sprintf('threshold at 1%%: %.1f%% false alarms, %.1f%% found', \
                     100*fpr0, 100*tpr0)
