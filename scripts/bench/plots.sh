#!/usr/bin/env bash
# SVG bar charts of a bench.sh run, with awk only (no python):
#   plots.sh RESULTS.csv RATIOS.csv OUTDIR TITLE
# OUTDIR/throughput.svg: per workload, each filesystem's median relative to the fastest of
#   the four (longest bar = fastest; for latency rows the inverse), labelled with the median.
# OUTDIR/ratios.svg: every ratio line on a log axis around 1, goal marks, met/below colours.
set -euo pipefail
RES=$1 RAT=$2 OUT=$3 TITLE=${4:-sealfs bench}

awk -F, -v title="$TITLE" '
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); return s }
NR == 1 { next }
{
    wl = $1; fs = $2
    if (!(wl in seen)) { seen[wl] = 1; order[++n] = wl }
    val[wl, fs] = $5; unit[wl] = $3; hi[wl] = $4; nfs[wl]++
}
END {
    split("sealfs tmpfs bindfs mergerfs", F, " ")
    col["sealfs"] = "#d62728"; col["tmpfs"] = "#7f7f7f"; col["bindfs"] = "#1f77b4"; col["mergerfs"] = "#2ca02c"
    bh = 13; gap = 14; left = 150; bw = 560; W = 900
    m = 0
    for (i = 1; i <= n; i++) if (nfs[order[i]] == 4) rows[++m] = order[i]
    H = 70 + m * (4 * bh + gap) + 30
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">%s: medians per workload</text>\n", esc(title)
    printf "<text x=\"10\" y=\"36\">bar length = speed relative to the fastest of the four (latency rows inverted); label = median</text>\n"
    for (k = 1; k <= 4; k++)
        printf "<rect x=\"%d\" y=\"44\" width=\"12\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"53\">%s</text>\n", 10 + (k - 1) * 100, col[F[k]], 26 + (k - 1) * 100, F[k]
    y = 66
    for (i = 1; i <= m; i++) {
        wl = rows[i]; best = 0
        for (k = 1; k <= 4; k++) {
            v = val[wl, F[k]] + 0
            s = (hi[wl] == 1) ? v : (v > 0 ? 1 / v : 0)
            sp[k] = s; if (s > best) best = s
        }
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-weight=\"bold\">%s</text>\n", left - 8, y + 2 * bh + 4, esc(wl)
        for (k = 1; k <= 4; k++) {
            len = best > 0 ? sp[k] / best * bw : 0
            if (len < 1) len = 1
            printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y, len, bh - 2, col[F[k]]
            printf "<text x=\"%.1f\" y=\"%d\">%s %s</text>\n", left + len + 4, y + bh - 3, val[wl, F[k]], esc(unit[wl])
            y += bh
        }
        y += gap
    }
    printf "</svg>\n"
}' "$RES" >"$OUT/throughput.svg"

awk -F, -v title="$TITLE" '
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); return s }
function lx(r) { if (r < lo) r = lo; if (r > hi) r = hi; return x0 + (log(r) - log(lo)) / (log(hi) - log(lo)) * bw }
NR == 1 { next }
{ n++; name[n] = $1; r[n] = $2 + 0; goal[n] = $3; st[n] = $4 }
END {
    lo = 0.01; hi = 100; x0 = 230; bw = 600; bh = 16; W = 900
    for (i = 1; i <= n; i++) { if (r[i] > 0 && r[i] < lo) lo = r[i] / 2; if (r[i] > hi) hi = r[i] * 2 }
    lo = exp(log(10) * int(log(lo) / log(10) - (lo < 1 ? 0.999 : 0))); hi = exp(log(10) * int(log(hi) / log(10) + 0.999))
    H = 80 + n * (bh + 4) + 30
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">%s: ratios (log scale, &gt; 1 = sealfs better)</text>\n", esc(title)
    printf "<text x=\"10\" y=\"36\">NAME: vs the best FUSE peer (bindfs, mergerfs); NAME_vs_tmpfs: vs tmpfs; *_vs_goal: goal / value. Black tick = goal.</text>\n"
    printf "<rect x=\"10\" y=\"44\" width=\"12\" height=\"10\" fill=\"#2ca02c\"/><text x=\"26\" y=\"53\">goal met</text>"
    printf "<rect x=\"100\" y=\"44\" width=\"12\" height=\"10\" fill=\"#d62728\"/><text x=\"116\" y=\"53\">below goal</text>"
    printf "<rect x=\"200\" y=\"44\" width=\"12\" height=\"10\" fill=\"#1f77b4\"/><text x=\"216\" y=\"53\">no goal</text>\n"
    top = 66; bot = top + n * (bh + 4)
    for (d = lo; d <= hi * 1.0001; d *= 10) {
        gx = lx(d)
        printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n", gx, top - 4, gx, bot, (d > 0.999 && d < 1.001) ? "black" : "#ddd"
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", gx, bot + 14, d
    }
    y = top
    for (i = 1; i <= n; i++) {
        c = st[i] == "met" ? "#2ca02c" : (st[i] == "BELOW" ? "#d62728" : "#1f77b4")
        a = lx(1); b = lx(r[i] > 0 ? r[i] : lo)
        x = a < b ? a : b; w = a < b ? b - a : a - b; if (w < 1) w = 1
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", x0 - 8, y + bh - 4, esc(name[i])
        printf "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", x, y, w, bh, c
        printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", (b > a ? b : a) + 4, y + bh - 4, r[i]
        if (goal[i] != "-" && goal[i] != "") {
            g = lx(goal[i] + 0)
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\" stroke-width=\"2\"/>\n", g, y - 2, g, y + bh + 2
        }
        y += bh + 4
    }
    printf "</svg>\n"
}' "$RAT" >"$OUT/ratios.svg"
