#!/bin/bash
# moestream imatrix against the reference's llama-imatrix on the golden
# model with the golden set's command: both formats byte for byte the
# reference's with exact attention (tests/data/imatrix/README.md; the GGUF
# one from a paged run with a 4-expert pool, so paging changes nothing),
# the golden set's own file equal where its flash attention cannot reach
# (block 0 before attention, every dense count), the split attention form
# (tiny-mix-mla: attn_k_b/attn_v_b per head), --process-output, and both
# files accepted by quantize (src/imatrix_load.c).
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden models/tiny-f32-legacy.gguf
need_golden models/tiny-mix-mla.gguf
need_golden quantize/tiny-f32-legacy.imatrix.gguf
need_tool python3 sha256sum
G=$MOESTREAM_GOLDEN
Q=$G/quantize
M=$G/models/tiny-f32-legacy.gguf
D=$(cd "$(dirname "$0")" && pwd)/data/imatrix
T=${MOESTREAM_TMP:-/tmp}/imatrix_cli.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
sha() { sha256sum < "$1" | cut -d' ' -f1; }

# the dataset name stored is -f as given, as the reference stores it
cp "$Q/calib.txt" "$T/calib.txt"
cd "$T" || exit 1
A="-c 128 --chunks 16 -t 2 --process-output"
"$BIN" imatrix -m "$M" -f calib.txt -o ours.gguf $A --load-mode pager --cache-experts 4 -v >gguf.out 2>gguf.log
check "imatrix (paged, 4-expert pool): exit 0" "[ $? -eq 0 ] && grep -q 'expert cache' gguf.log"
check "GGUF file byte for byte the reference's" "[ \"\$(sha ours.gguf)\" = \"\$(cat '$D/tiny-f32-legacy.imatrix.gguf.sha256')\" ]"
"$BIN" imatrix -m "$M" -f calib.txt -o ours.dat --output-format dat $A >dat.out 2>dat.log
check "imatrix --output-format dat: exit 0" "[ $? -eq 0 ]"
check ".dat file byte for byte the reference's" "[ \"\$(sha ours.dat)\" = \"\$(cat '$D/tiny-f32-legacy.imatrix.dat.sha256')\" ]"
"$BIN" imatrix -m "$G/models/tiny-mix-mla.gguf" -f calib.txt -o mla.gguf $A >mla.out 2>mla.log
check "split-form model (attn_k_b/attn_v_b per head): GGUF byte for byte the reference's" \
      "[ $? -eq 0 ] && [ \"\$(sha mla.gguf)\" = \"\$(cat '$D/tiny-mix-mla.imatrix.gguf.sha256')\" ]"
check "running perplexity printed per chunk (16)" "[ \$(grep -o '\[[0-9]*\]' gguf.out | wc -l) -eq 16 ]"

# against the golden set's file (flash attention on): what it cannot reach
cat > cmp.py <<'PY'
import struct, sys
def rd(p):
    d = open(p, 'rb').read(); pos = 0
    def take(f):
        nonlocal pos; v = struct.unpack_from('<' + f, d, pos); pos += struct.calcsize('<' + f); return v[0]
    def s():
        nonlocal pos; n = take('Q'); r = d[pos:pos + n].decode(); pos += n; return r
    assert d[:4] == b'GGUF'; pos = 4; take('I'); nt = take('Q'); nkv = take('Q'); kv = {}
    for _ in range(nkv):
        k = s(); t = take('I')
        if t == 8: kv[k] = s()
        elif t == 4: kv[k] = take('I')
        elif t == 9: take('I'); kv[k] = [s() for _ in range(take('Q'))]
        else: raise SystemExit('unexpected key type %d' % t)
    infos = []
    for _ in range(nt):
        name = s(); dims = [take('Q') for _ in range(take('I'))]; take('I'); infos.append((name, dims, take('Q')))
    d0 = (pos + 31) // 32 * 32; out = {}
    for name, dims, off in infos:
        n = 1
        for x in dims: n *= x
        out[name] = struct.unpack_from('<%df' % n, d, d0 + off)
    return kv, out
kg, g = rd(sys.argv[1]); ko, o = rd(sys.argv[2]); bad = 0
upstream = ['blk.0.attn_q_a', 'blk.0.attn_q_b', 'blk.0.attn_kv_a_mqa', 'blk.0.attn_kv_b']
for k in sorted(g):
    if k not in o: print('missing', k); bad += 1; continue
    # expert counts follow the routing, which follows the attention
    if (k.endswith('.counts') and '_exps' not in k) or any(k.startswith(u + '.') for u in upstream):
        diff = [i for i, (x, y) in enumerate(zip(o[k], g[k])) if x != y]
        if diff: print('%s[%d]: got %r want %r' % (k, diff[0], o[k][diff[0]], g[k][diff[0]])); bad += 1
if sorted(g) != sorted(o): print('tensor names differ'); bad += 1
if kg != ko: print('keys differ: %r vs %r' % (ko, kg)); bad += 1
print('%d tensors, %d differ' % (len(g), bad)); sys.exit(bad > 0)
PY
check "golden file: same tensors and keys, dense counts and block-0 pre-attention sums bit for bit" \
      "python3 cmp.py '$Q/tiny-f32-legacy.imatrix.gguf' ours.gguf > cmp.log || { cat cmp.log; false; }"

"$BIN" imatrix -m "$M" -f calib.txt -o noout.gguf -c 128 --chunks 2 -t 2 >/dev/null 2>&1
check "without --process-output: no output.weight entry" \
      "[ $? -eq 0 ] && ! grep -aqP '[^_]output\.weight\.in_sum2' noout.gguf && grep -aqP '[^_]output\.weight\.in_sum2' ours.gguf && grep -q 'blk.3.ffn_down_exps.weight.in_sum2' noout.gguf"

# the quantizer reads both (IQ1_S needs data for every tensor it quantizes)
for f in ours.gguf ours.dat; do
  "$BIN" quantize -m "$M" -o "q-$f.gguf" --pure --type IQ1_S --token-embedding-type q4_K --imatrix "$f" -t 2 >/dev/null 2>"q-$f.log"
  check "quantize --pure IQ1_S --imatrix $f: exit 0" "[ $? -eq 0 ] || { tail -2 'q-$f.log'; false; }"
done

"$BIN" imatrix -m "$M" -f calib.txt -o x.gguf --output-format xml >/dev/null 2>&1
check "--output-format xml: exit 2" "[ $? -eq 2 ]"
"$BIN" imatrix -m "$M" -o x.gguf >/dev/null 2>&1
check "no -f: exit 2" "[ $? -eq 2 ]"

echo "$fails failed"
[ $fails -eq 0 ]
