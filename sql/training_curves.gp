# Training curves: loss and val_loss per epoch, as Keras' plot(history).
# Run by sql/charts.sh, which sets with -e:
#   term   'pngcairo' or 'png'
#   data   CSV of epoch,loss,val_loss (val_loss empty when not measured)
#   out    the PNG to write
#   model  the model's name, for the title
#   nval   how many epochs have a val_loss
#   last_loss, last_val   the last epoch's values (last_val<0: none)
#   best_epoch, best_val  the epoch with the lowest val_loss (0: none)

if (term eq 'pngcairo') {
  set terminal pngcairo size 800,500 enhanced font 'DejaVu Sans,11' linewidth 1.2
} else {
  set terminal png size 800,500 enhanced font 'DejaVu Sans,11'
}
set termoption noenhanced          # model names may hold '_' and '^'
set encoding utf8
set output out
set datafile separator comma

# ggplot2's two hues, as R's keras draws history: training red, validation teal.
TRAIN = '#F8766D'
VALID = '#00A9B0'

set title sprintf("Training history of model '%s'", model) font ',14'
set xlabel 'epoch'
set ylabel 'loss (lower is better)'
set border 3 linecolor rgb '#555555'
set tics nomirror textcolor rgb '#333333'
set grid xtics ytics linecolor rgb '#E5E5E5' linetype 1 linewidth 1
set key top right opaque box linecolor rgb '#CCCCCC' spacing 1.3 reverse Left width 1
set format y '%.4g'
set xtics out
set ytics out
set yrange [0:*]
set offsets 0, 0, graph 0.05, 0

# Epochs from axis to axis, with half an epoch of air; whole epochs only.
stats data using 1:2 nooutput name 'E'
ymax = E_max_y
if (nval > 0) {
  stats data using 3 nooutput name 'V'
  if (V_max > ymax) { ymax = V_max }
}
set xrange [E_min_x - 0.5 : E_max_x + 0.5]
if (E_max_x - E_min_x <= 10) { set xtics 1 }

set style line 1 linecolor rgb TRAIN linewidth 2 pointtype 7 pointsize 0.6
set style line 2 linecolor rgb VALID linewidth 2 pointtype 7 pointsize 0.6

# The lowest val_loss, circled and labelled; the label goes on the side
# with more room: left of the point in the right half, below it unless the
# point is near the x axis.
if (best_epoch > 0) {
  right_half = best_epoch > (E_min_x + E_max_x)/2.0
  dx = right_half ? -1 : 1
  dy = best_val > 0.15*ymax ? -1.6 : 1.8
  set label 1 sprintf("lowest val_loss %.4g\nat epoch %d", best_val, best_epoch) \
      at best_epoch, best_val point pointtype 6 pointsize 1.8 linecolor rgb VALID \
      offset dx, dy textcolor rgb '#333333' font ',10'
  if (right_half) { set label 1 right } else { set label 1 left }
}

if (nval > 0) {
  plot data using 1:2 with linespoints linestyle 1 \
         title sprintf('loss (training): %.4g', last_loss), \
       '' using 1:3 with linespoints linestyle 2 \
         title sprintf('val_loss (validation): %.4g', last_val)
} else {
  plot data using 1:2 with linespoints linestyle 1 \
         title sprintf('loss (training): %.4g', last_loss)
}
