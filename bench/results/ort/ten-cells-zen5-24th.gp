# Drawn by bench/ort_report.py from 2 vs_ort.py run(s).
# Rerun with: gnuplot ten-cells-zen5-24th.gp (in this folder)
set encoding utf8
set border 3 lw 1.2
set tics nomirror out
set grid ytics lc rgb '#e6e6e6' lw 1
set bars 2
set xrange [-0.6:4.6]
set yrange [0.400:1.513]
set xtics ("ResNet-18\n224x224" 0, "CIFAR ResNet-18\n32x32" 1, "MobileNet-v2\n224x224" 2, "ResNet-50\n224x224" 3, "DenseNet-121\n224x224" 4) scale 0
set ylabel 'dlas time / ONNX Runtime time (below 1: dlas faster)'
set key at screen 0.5, screen 0.875 center horizontal Left reverse samplen 1.5 width 2
set bmargin 4
set tmargin 5.5
set label 1 "dlas time over ONNX Runtime time, 2 threads, fp32 (Zen 5 (2 cores), twenty-fourth stop, 2026-12-07)\npoints: the median of the per-round ratios; bars: the lowest to the highest round" at screen 0.5, screen 0.955 center
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lc rgb '#888888' dt 2 lw 1

set terminal pngcairo size 1050,560 noenhanced font 'DejaVu Sans,11'
set output 'ten-cells-zen5-24th.png'
plot 'ten-cells-zen5-24th.dat' index 0 using 1:2:3:4 with yerrorbars pt 7 ps 1.3 lw 1.5 lc rgb '#1f77b4' title 'batch 1', \
     'ten-cells-zen5-24th.dat' index 1 using 1:2:3:4 with yerrorbars pt 5 ps 1.3 lw 1.5 lc rgb '#d95f02' title 'batch 16', \
     'ten-cells-zen5-24th.dat' index 0 using ($1-0.113):5:(0.225):(0) with vectors nohead lw 3 lc rgb 'black' title 'goal', \
     'ten-cells-zen5-24th.dat' index 1 using ($1-0.113):5:(0.225):(0) with vectors nohead lw 3 lc rgb 'black' notitle

set terminal pdfcairo size 9.55in,5.09in noenhanced font 'DejaVu Sans,8'
set output 'ten-cells-zen5-24th.pdf'
plot 'ten-cells-zen5-24th.dat' index 0 using 1:2:3:4 with yerrorbars pt 7 ps 1.3 lw 1.5 lc rgb '#1f77b4' title 'batch 1', \
     'ten-cells-zen5-24th.dat' index 1 using 1:2:3:4 with yerrorbars pt 5 ps 1.3 lw 1.5 lc rgb '#d95f02' title 'batch 16', \
     'ten-cells-zen5-24th.dat' index 0 using ($1-0.113):5:(0.225):(0) with vectors nohead lw 3 lc rgb 'black' title 'goal', \
     'ten-cells-zen5-24th.dat' index 1 using ($1-0.113):5:(0.225):(0) with vectors nohead lw 3 lc rgb 'black' notitle

set terminal svg size 1050,560 noenhanced font 'DejaVu Sans,11' background rgb 'white'
set output 'ten-cells-zen5-24th.svg'
plot 'ten-cells-zen5-24th.dat' index 0 using 1:2:3:4 with yerrorbars pt 7 ps 1.3 lw 1.5 lc rgb '#1f77b4' title 'batch 1', \
     'ten-cells-zen5-24th.dat' index 1 using 1:2:3:4 with yerrorbars pt 5 ps 1.3 lw 1.5 lc rgb '#d95f02' title 'batch 16', \
     'ten-cells-zen5-24th.dat' index 0 using ($1-0.113):5:(0.225):(0) with vectors nohead lw 3 lc rgb 'black' title 'goal', \
     'ten-cells-zen5-24th.dat' index 1 using ($1-0.113):5:(0.225):(0) with vectors nohead lw 3 lc rgb 'black' notitle
set output
