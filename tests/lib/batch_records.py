#!/usr/bin/env python3
"""Checks a `moestream batch` output file.

batch_records.py OUT [--lines SPEC] [--partial] [--ref REF] [--errors SPEC]

Every line must be a whole JSON record ending in a newline, with an integer
"line" field, and no input line may be answered twice.  --lines 1-8,10: the
input lines that must have a record (--partial: at most these, some may be
missing).  --errors SPEC: the lines whose record must be an error record
(all others must be answers).  --ref REF: a clean run's output; each record
must carry the same custom_id and (answers) the same text as REF's for its
line.  Prints "records=K" and exits 0, or prints what is wrong and exits 1.
"""
import argparse, json, sys


def spec(s):
    out = set()
    for part in filter(None, (s or "").split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def load(path):
    data = open(path, "rb").read()
    if data and not data.endswith(b"\n"):
        tail = data.rsplit(b"\n", 1)[-1][:60]
        raise SystemExit(f"{path}: torn last line {tail!r}")
    recs = {}
    for no, raw in enumerate(data.split(b"\n")[:-1] if data else [], 1):
        try:
            r = json.loads(raw)
        except ValueError as e:
            raise SystemExit(f"{path}: line {no} is not JSON ({e}): {raw[:80]!r}")
        ln = r.get("line")
        if not isinstance(ln, int):
            raise SystemExit(f"{path}: record {no} has no integer 'line': {raw[:80]!r}")
        if ln in recs:
            raise SystemExit(f"{path}: input line {ln} answered twice (records {recs[ln][0]} and {no})")
        recs[ln] = (no, r)
    return recs


def text(r):
    m = r["response"]["body"]["choices"][0]["message"]
    return m.get("reasoning_content", "") + "\x00" + m["content"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--lines")
    ap.add_argument("--partial", action="store_true")
    ap.add_argument("--errors")
    ap.add_argument("--ref")
    a = ap.parse_args()
    recs = load(a.out)
    if a.lines is not None:
        want = spec(a.lines)
        got = set(recs)
        if got - want:
            raise SystemExit(f"records for lines not expected: {sorted(got - want)}")
        if not a.partial and want - got:
            raise SystemExit(f"lines without a record: {sorted(want - got)}")
    errs = spec(a.errors)
    for ln, (no, r) in recs.items():
        is_err = r.get("error") is not None
        if a.errors is not None and is_err != (ln in errs):
            raise SystemExit(f"line {ln}: {'error' if is_err else 'answer'} record, want the other: {r}")
        if not is_err:
            assert r["response"]["status_code"] == 200, r
    if a.ref:
        ref = load(a.ref)
        for ln, (no, r) in recs.items():
            if ln not in ref:
                raise SystemExit(f"line {ln} not in the reference output")
            q = ref[ln][1]
            if r.get("custom_id") != q.get("custom_id"):
                raise SystemExit(f"line {ln}: custom_id {r.get('custom_id')!r}, reference {q.get('custom_id')!r}")
            if (r.get("error") is None) != (q.get("error") is None):
                raise SystemExit(f"line {ln}: error {r.get('error')}, reference {q.get('error')}")
            if r.get("error") is None and text(r) != text(q):
                raise SystemExit(f"line {ln}: text {text(r)!r} differs from the reference {text(q)!r}")
    print(f"records={len(recs)}")


if __name__ == "__main__":
    main()
