"""Throughput of `deepseek-wgpu serve` with 1, 2, 4 … concurrent streams (stdlib only).

usage: python3 tools/bench_serve.py URL [--streams 1,2,4] [--tokens 128] [--rounds 2]

Each stream is a streaming /v1/completions request of exactly --tokens tokens
(`ignore_eos`); per-stream tokens/s count from the stream's first token to its last,
aggregate tokens/s is all tokens over the wall time of the whole round (first request
sent to last token received); each figure is the best of --rounds rounds. Prints a
Markdown table.
"""

import argparse
import json
import threading
import time
import urllib.request


def stream(url, tokens, i, out):
    body = {"prompt": f"<｜User｜>What is {1000 + i} + {i * 7}?<｜Assistant｜><think>\n", "max_tokens": tokens, "ignore_eos": True, "stream": True, "temperature": 0.6, "seed": i}
    req = urllib.request.Request(url + "/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    first, last, n = None, None, 0
    with urllib.request.urlopen(req) as r:
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("choices") and ev["choices"][0].get("finish_reason") is None:
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
    out[i] = (first, last, n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--streams", default="1,2,4")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    stream(a.url, 8, 0, {})  # warm up
    print("| concurrent streams | aggregate tokens/s | per-stream tokens/s (mean) | per-stream tokens/s (min) |")
    print("| --- | --- | --- | --- |")
    for k in [int(x) for x in a.streams.split(",")]:
        aggs, means, mins = [], [], []
        for _ in range(a.rounds):
            out = {}
            t0 = time.perf_counter()
            ts = [threading.Thread(target=stream, args=(a.url, a.tokens, i, out)) for i in range(k)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            t1 = max(v[1] for v in out.values())
            total = sum(v[2] for v in out.values())
            per = [(v[2] - 1) / (v[1] - v[0]) for v in out.values()]
            aggs.append(total / (t1 - t0))
            means.append(sum(per) / len(per))
            mins.append(min(per))
        print(f"| {k} | {max(aggs):.1f} | {max(means):.1f} | {max(mins):.1f} |")


if __name__ == "__main__":
    main()
