# Average reconstruction error per digit class, as the tutorial's
#   ggplot(aes(x=class, fill=class, y=avg_error)) + geom_col()
# Run by sql/charts.sh, which sets with -e:
#   term   'pngcairo' or 'png'
#   data   CSV of class,avg_error
#   out    the PNG to write
#   mean   the mean of avg_error over the classes

if (term eq 'pngcairo') {
  set terminal pngcairo size 800,500 enhanced font 'DejaVu Sans,11' linewidth 1.2
} else {
  set terminal png size 800,500 enhanced font 'DejaVu Sans,11'
}
set termoption noenhanced
set encoding utf8
set output out
set datafile separator comma

# ggplot2's default fill for ten classes: scales::hue_pal()(10).
array fill[10] = [0xF8766D, 0xD89000, 0xA3A500, 0x39B600, 0x00BF7D, \
                  0x00BFC4, 0x00B0F6, 0x9590FF, 0xE76BF3, 0xFF62BC]
colour(c) = (c >= 0 && c <= 9) ? fill[int(c) + 1] : 0x999999

set title 'Average reconstruction error per digit class' font ',14'
set xlabel 'digit class'
set ylabel 'average reconstruction error'
set border 3 linecolor rgb '#555555'
set tics nomirror textcolor rgb '#333333'
set grid ytics linecolor rgb '#E5E5E5' linetype 1 linewidth 1
set xtics 1 out scale 0
set ytics out
set xrange [-0.6:9.6]
set yrange [0:*]
set offsets 0, 0, graph 0.10, 0
set style fill solid 0.9 border rgb '#FFFFFF'
set boxwidth 0.8
set key top left opaque box linecolor rgb '#CCCCCC' reverse Left

set arrow 1 from graph 0, first mean to graph 1, first mean nohead \
    dashtype 2 linecolor rgb '#666666' linewidth 1.2 front

plot data using 1:2:(colour($1)) with boxes linecolor rgb variable notitle, \
     '' using 1:2:(sprintf('%.2f', $2)) with labels offset 0, 0.8 \
        textcolor rgb '#333333' font ',10' notitle, \
     NaN with lines dashtype 2 linecolor rgb '#666666' linewidth 1.2 \
        title sprintf('mean of the classes: %.2f', mean)
