#!/bin/bash
# moestream perplexity against the reference's llama-perplexity: with
# flash attention off and an F32 K/V cache (tests/data/perplexity/) every
# per-chunk running PPL of tiny-f32-legacy and of our UD-IQ1_S output to
# 1e-6 relative, the base-logits file byte for byte (so files go both
# ways) and every per-chunk column of the KL run; with --attn flash (the
# reference's default arithmetic) the golden set's perplexity/*.txt: every
# per-chunk value, the KL table and its statistics; a paged run; bad usage.
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden models/tiny-f32-legacy.gguf
need_golden quantize/calib.txt
need_tool sha256sum awk
G=$MOESTREAM_GOLDEN
Q=$G/quantize
M=$G/models/tiny-f32-legacy.gguf
D=${PPL_REF_DIR:-$(cd "$(dirname "$0")" && pwd)/data/perplexity} # PPL_REF_DIR: to see it fail
T=${MOESTREAM_TMP:-/tmp}/perplexity_cli.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
REL=1e-6 # named tolerance: relative, per printed value

# "[k]v," pairs of two files: same chunks, every value within REL
cmp_chunks() {
  awk -v rel=$REL 'function parse(s, a,   n, i, p, q) {
      n = split(s, p, ","); for (i = 1; i <= n; i++) if (p[i] ~ /^\[/) { sub(/^\[/, "", p[i]); split(p[i], q, "]"); a[q[1]] = q[2] } }
    NR == FNR { parse($0, want); next }
    { parse($0, got) }
    END { nw = 0; for (k in want) { nw++; if (!(k in got)) { print "chunk " k " missing"; bad++ ; continue }
            d = got[k] - want[k]; if (d < 0) d = -d
            if (d > rel * (want[k] < 0 ? -want[k] : want[k])) { print "chunk " k ": got " got[k] " want " want[k]; bad++ } }
          if (nw < 2) { print "no chunks in the reference"; bad++ }
          exit bad > 0 }' "$1" "$2"
}

F="-c 128 -b 128 -t 2 --attn mha"
"$BIN" perplexity -m "$M" -f "$Q/calib.txt" $F >"$T/f32.txt" 2>"$T/f32.log"
check "tiny-f32-legacy: exit 0" "[ $? -eq 0 ]"
check "tiny-f32-legacy: 39 per-chunk PPL equal the reference's within $REL" \
      "cmp_chunks '$D/tiny-f32-legacy.ppl.txt' '$T/f32.txt'"
check "tiny-f32-legacy: final estimate line as the reference's" \
      "[ \"\$(grep Final '$T/f32.txt')\" = \"\$(grep Final '$D/tiny-f32-legacy.ppl.txt')\" ]"

"$BIN" quantize -m "$M" -o "$T/ud.gguf" --recipe ud-iq1_s --imatrix "$Q/tiny-f32-legacy.imatrix.gguf" -t 2 2>"$T/q.log"
check "quantize --recipe ud-iq1_s: exit 0" "[ $? -eq 0 ]"
"$BIN" perplexity -m "$T/ud.gguf" -f "$Q/calib.txt" $F >"$T/ud.txt" 2>"$T/ud.log"
check "ud-iq1_s: 39 per-chunk PPL equal the reference's within $REL" \
      "cmp_chunks '$D/ud-iq1_s.ppl.txt' '$T/ud.txt'"

"$BIN" perplexity -m "$M" -f "$Q/calib.txt" $F --kl-divergence-base "$T/base.kld" >"$T/base.txt" 2>"$T/base.log"
check "base file written (exit 0)" "[ $? -eq 0 ] && [ -s '$T/base.kld' ]"
check "base file byte for byte the reference's (sha256)" \
      "[ \"\$(sha256sum < '$T/base.kld' | cut -d' ' -f1)\" = \"\$(cat '$D/base-f32.kld.sha256')\" ]"

"$BIN" perplexity -m "$T/ud.gguf" $F --kl-divergence-base "$T/base.kld" --kl-divergence >"$T/kld.txt" 2>"$T/kld.log"
check "--kl-divergence: exit 0" "[ $? -eq 0 ]"
# chunk rows: PPL, ln ratio, KLD, Δp RMS, same top and their uncertainties
kl_rows() { awk '$1 ~ /^[0-9]+$/ && NF >= 17 { print $1, $2, $4, $5, $7, $8, $10, $11, $13, $15, $17 }' "$1"; }
check "--kl-divergence: 39 chunk rows, every column within $REL of the reference's" \
      "paste -d' ' <(kl_rows '$D/ud-iq1_s-vs-f32.kld.txt') <(kl_rows '$T/kld.txt') | awk -v rel=$REL '
         { n++; for (i = 1; i <= 11; i++) { w = \$i; g = \$(i + 11); d = g - w; if (d < 0) d = -d; a = w < 0 ? -w : w
             if (g == \"\" || d > rel * a) { print \"chunk \" \$1 \" column \" i \": got \" g \" want \" w; bad++ } } }
         END { if (n != 39) { print n \" rows\"; bad++ } exit bad > 0 }'"
check "--kl-divergence: closing statistics as the reference prints them" \
      "diff <(sed -n '/Perplexity statistics/,\$p' '$D/ud-iq1_s-vs-f32.kld.txt' | grep -v '^\$') <(sed -n '/Perplexity statistics/,\$p' '$T/kld.txt' | grep -v '^\$')"

# the golden set's outputs (llama-perplexity's defaults: flash attention)
# with --attn flash: every per-chunk value, and the whole KL table
P=$G/quantize/perplexity
FF="-c 128 -b 128 -t 2 --attn flash"
"$BIN" perplexity -m "$M" -f "$Q/calib.txt" $FF >"$T/fa-f32.txt" 2>"$T/fa-f32.log"
check "--attn flash, tiny-f32-legacy: 39 per-chunk PPL equal the golden set's within $REL" \
      "cmp_chunks '$P/tiny-f32-legacy.ppl.txt' '$T/fa-f32.txt'"
"$BIN" perplexity -m "$T/ud.gguf" -f "$Q/calib.txt" $FF >"$T/fa-ud.txt" 2>"$T/fa-ud.log"
check "--attn flash, our ud-iq1_s: 39 per-chunk PPL equal the golden set's within $REL" \
      "cmp_chunks '$P/ud-iq1_s.ppl.txt' '$T/fa-ud.txt'"
"$BIN" perplexity -m "$M" -f "$Q/calib.txt" $FF --kl-divergence-base "$T/fa-base.kld" >/dev/null 2>"$T/fa-base.log"
"$BIN" perplexity -m "$T/ud.gguf" $FF --kl-divergence-base "$T/fa-base.kld" --kl-divergence >"$T/fa-kld.txt" 2>"$T/fa-kld.log"
check "--attn flash --kl-divergence against our base file: 39 chunk rows within $REL of the golden set's" \
      "paste -d' ' <(kl_rows '$P/ud-iq1_s-vs-f32.kld.txt') <(kl_rows '$T/fa-kld.txt') | awk -v rel=$REL '
         { n++; for (i = 1; i <= 11; i++) { w = \$i; g = \$(i + 11); d = g - w; if (d < 0) d = -d; a = w < 0 ? -w : w
             if (g == \"\" || d > rel * a) { print \"chunk \" \$1 \" column \" i \": got \" g \" want \" w; bad++ } } }
         END { if (n != 39) { print n \" rows\"; bad++ } exit bad > 0 }'"
check "--attn flash --kl-divergence: closing statistics as the golden set's (Mean PPL(base) included)" \
      "diff <(sed -n '/Perplexity statistics/,\$p' '$P/ud-iq1_s-vs-f32.kld.txt' | grep -v '^\$') <(sed -n '/Perplexity statistics/,\$p' '$T/fa-kld.txt' | grep -v '^\$')"

# paged (a 4-expert pool) the same numbers
"$BIN" perplexity -m "$M" -f "$Q/calib.txt" $F --chunks 3 --load-mode pager --cache-experts 4 -v >"$T/paged.txt" 2>"$T/paged.log"
check "paged with a 4-expert pool: the first 3 chunks equal the reference's" \
      "grep -q 'expert cache' '$T/paged.log' && cmp_chunks <(grep -o '\[[123]\][0-9.]*,' '$D/tiny-f32-legacy.ppl.txt' | tr -d '\n') '$T/paged.txt'"

# bad use
"$BIN" perplexity -m "$M" --kl-divergence >/dev/null 2>&1
check "--kl-divergence without a base file: exit 2" "[ $? -eq 2 ]"
"$BIN" perplexity -m "$M" --kl-divergence-base "$Q/calib.txt" --kl-divergence >/dev/null 2>"$T/bad.log"
check "a file that is not a base file: exit 1 naming it" "[ $? -eq 1 ] && grep -q 'calib.txt' '$T/bad.log'"
"$BIN" perplexity -m "$M" -f "$Q/calib.txt" -c 8192 >/dev/null 2>"$T/short.log"
check "text too short for the context: exit 1 with sizes" "[ $? -eq 1 ] && grep -q 'needs at least 16384' '$T/short.log'"

echo "$fails failed"
[ $fails -eq 0 ]
