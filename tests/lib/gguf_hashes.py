#!/usr/bin/env python3
"""gguf_hashes.py - per-tensor type, dims and sha256 of the data bytes of a
GGUF file (or split set: pass part 1), as JSON on stdout, in the form of
../shared/golden/quantize/hashes.json; with --compare HASHES.json OUTPUT_NAME
prints the tensors whose type or hash differ and exits 1 if any do."""
import hashlib, json, os, re, struct, sys

TYPES = {0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 10: 'Q2_K', 11: 'Q3_K',
         12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S',
         20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 29: 'IQ1_M', 30: 'BF16'}
BLOCK = {'F32': (1, 4), 'F16': (1, 2), 'BF16': (1, 2), 'Q4_0': (32, 18), 'Q4_1': (32, 20), 'Q5_0': (32, 22),
         'Q5_1': (32, 24), 'Q8_0': (32, 34), 'Q2_K': (256, 84), 'Q3_K': (256, 110), 'Q4_K': (256, 144),
         'Q5_K': (256, 176), 'Q6_K': (256, 210), 'IQ2_XXS': (256, 66), 'IQ2_XS': (256, 74), 'IQ3_XXS': (256, 98),
         'IQ1_S': (256, 50), 'IQ4_NL': (32, 18), 'IQ3_S': (256, 110), 'IQ2_S': (256, 82), 'IQ4_XS': (256, 136),
         'IQ1_M': (256, 56)}
SCALAR = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}


def read_part(path):
    f = open(path, 'rb')
    d = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from('<' + fmt, d, pos)
        pos += struct.calcsize('<' + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take('Q')
        s = d[pos:pos + n].decode('utf-8', 'replace')
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take('I'), take('Q')
            return [value(et) for _ in range(n)]
        return take(SCALAR[t])

    assert d[:4] == b'GGUF'
    pos = 4
    take('I')
    nt, nkv = take('Q'), take('Q')
    kv = {}
    for _ in range(nkv):
        k = string()
        kv[k] = value(take('I'))
    infos = []
    for _ in range(nt):
        name = string()
        nd = take('I')
        dims = [take('Q') for _ in range(nd)]
        t = take('I')
        off = take('Q')
        infos.append((name, dims, t, off))
    align = kv.get('general.alignment', 32)
    data0 = (pos + align - 1) // align * align
    out = {}
    for name, dims, t, off in infos:
        tn = TYPES[t]
        be, bs = BLOCK[tn]
        n = 1
        for x in dims:
            n *= x
        nbytes = n // be * bs
        b = d[data0 + off:data0 + off + nbytes]
        out[name] = {'dims': dims, 'sha256': hashlib.sha256(b).hexdigest(), 'type': tn}
    return kv, out


def read(path):
    kv, out = read_part(path)
    m = re.match(r'(.*)-00001-of-(\d{5})\.gguf$', path)
    if m:
        for i in range(2, int(m.group(2)) + 1):
            out.update(read_part('%s-%05d-of-%s.gguf' % (m.group(1), i, m.group(2)))[1])
    return kv, out


if __name__ == '__main__':
    if len(sys.argv) == 5 and sys.argv[2] == '--compare':
        _, got = read(sys.argv[1])
        want = json.load(open(sys.argv[3]))[sys.argv[4]]
        bad = 0
        for name in sorted(set(want) | set(got)):
            w, g = want.get(name), got.get(name)
            if not w or not g or w['type'] != g['type'] or w['sha256'] != g['sha256'] or w['dims'] != g['dims']:
                bad += 1
                print('%s %s: got %s want %s' % (sys.argv[4], name, g and g['type'], w and w['type']))
        print('%s: %d tensors, %d differ' % (sys.argv[4], len(want), bad))
        sys.exit(1 if bad else 0)
    kv, out = read(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == '--kv':
        print(json.dumps({k: v for k, v in kv.items() if not isinstance(v, list)}, indent=1))
    else:
        print(json.dumps(out, indent=1, sort_keys=True))
