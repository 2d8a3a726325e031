#!/usr/bin/env python3
"""Draws docs/receive-throughput.svg and prints the README's ratio table from criterion's JSON.

Run after `cargo bench --bench compare`:

    python3 scripts/plot_bench.py                  # writes the SVG, prints the tables
    python3 scripts/plot_bench.py --baseline NAME  # a run saved with --save-baseline NAME

It reads target/criterion/<group>/<function>/<baseline>/{benchmark,estimates}.json, takes the
median time per iteration and the declared throughput (bytes or elements per iteration), and
needs nothing beyond the Python standard library.
"""

import argparse
import json
import math
import os
import sys
from xml.sax.saxutils import escape

SIZES = [16, 125, 1024, 16384, 65536, 1048576]
GIB = float(1 << 30)


def load(root, baseline):
    """{(group, function): {"ns": median ns per iteration, "bytes"/"elements": per iteration}}"""
    results = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != baseline or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            estimates = json.load(f)
        entry = {"ns": estimates["median"]["point_estimate"]}
        throughput = bench.get("throughput") or {}
        if "Bytes" in throughput:
            entry["bytes"] = throughput["Bytes"]
        if "Elements" in throughput:
            entry["elements"] = throughput["Elements"]
        results[(bench["group_id"], bench["function_id"])] = entry
    return results


def gib_per_s(entry):
    return entry["bytes"] / entry["ns"] * 1e9 / GIB


def per_s(entry):
    return entry["elements"] / entry["ns"] * 1e9


# --------------------------------------------------------------------------------------------
# tables


def fmt_rate(value, unit):
    if value is None:
        return "—"
    if unit == "GiB/s":
        return f"{value:.2f} GiB/s"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M/s"
    return f"{value / 1e3:.0f} k/s"


def tables(results):
    """The README's tables: absolute rates, then the issue's targets as ratios."""

    def rate(group, function, unit="GiB/s", size=None):
        entry = results.get((group, function))
        if entry is None:
            return None
        if unit == "GiB/s":
            return gib_per_s(entry)
        if unit == "msg/s":  # messages per second from bytes and the message size
            return entry["bytes"] / size / entry["ns"] * 1e9
        return per_s(entry)

    rows = [
        ("receive binary 16 B (messages)", "receive/binary/16", "msg/s", 16, "xor_in_place"),
        ("receive binary 125 B (messages)", "receive/binary/125", "msg/s", 125, "xor_in_place"),
        ("receive binary 1 KiB", "receive/binary/1024", "GiB/s", None, "xor_in_place"),
        ("receive binary 64 KiB", "receive/binary/65536", "GiB/s", None, "xor_in_place"),
        ("receive binary 1 MiB", "receive/binary/1048576", "GiB/s", None, "xor_in_place"),
        ("receive text 1 KiB (mixed UTF-8)", "receive/text/1024", "GiB/s", None, None),
        ("receive text 64 KiB (mixed UTF-8)", "receive/text/65536", "GiB/s", None, None),
        ("receive text 64 KiB in 64 fragments", "fragmented/text/65536", "GiB/s", None, None),
        ("send binary 64 KiB (client, masked)", "send/binary/65536", "GiB/s", None,
         "copy_and_mask"),
        ("send binary 16 B (client, masked)", "send/binary/16", "msg/s", 16, "copy_and_mask"),
        ("handshake (Chromium-like request → 101)", "handshake/server", "elem/s", None,
         "httparse_sha1_base64"),
    ]
    lines = [
        "| row | wsmachine | tungstenite | fastwebsockets | baseline | wsmachine ÷ faster peer |",
        "|---|---|---|---|---|---|",
    ]
    for label, group, unit, size, baseline in rows:
        ours = rate(group, "wsmachine", unit, size)
        t = rate(group, "tungstenite", unit, size)
        f = rate(group, "fastwebsockets", unit, size)
        base = rate(group, baseline, unit, size) if baseline else None
        peers = [p for p in (t, f) if p is not None]
        ratio = f"{ours / max(peers):.2f}×" if ours and peers else "—"
        shown_unit = "GiB/s" if unit == "GiB/s" else "per s"
        base_text = f"{fmt_rate(base, shown_unit)} ({baseline})" if base else "—"
        lines.append(
            f"| {label} | {fmt_rate(ours, shown_unit)} | {fmt_rate(t, shown_unit)} | "
            f"{fmt_rate(f, shown_unit)} | {base_text} | {ratio} |"
        )

    def ratio(a, b):
        return a / b if a is not None and b else None

    targets = []

    def target(label, value, goal, peer_text):
        if value is None:
            targets.append(f"| {label} | — | ≥ {goal:g} | not measured |")
            return
        verdict = "met" if value >= goal else "missed"
        targets.append(f"| {label} | {value:.2f} | ≥ {goal:g} | {verdict}{peer_text} |")

    for size, label in [(65536, "64 KiB"), (1048576, "1 MiB")]:
        g = f"receive/binary/{size}"
        target(
            f"receive binary {label}: wsmachine ÷ xor_in_place",
            ratio(rate(g, "wsmachine"), rate(g, "xor_in_place")),
            0.8,
            "",
        )
    for size in (16, 125):
        g = f"receive/binary/{size}"
        peer = max(x for x in (rate(g, "tungstenite"), rate(g, "fastwebsockets"), 0) if x is not None)
        target(
            f"receive binary {size} B: wsmachine ÷ faster peer (messages/s)",
            ratio(rate(g, "wsmachine"), peer),
            3,
            "",
        )
    g = "receive/text/65536"
    target(
        "receive text 64 KiB: wsmachine ÷ fastwebsockets",
        ratio(rate(g, "wsmachine"), rate(g, "fastwebsockets")),
        1.3,
        "",
    )
    g = "send/binary/65536"
    target(
        "send binary 64 KiB: wsmachine ÷ copy_and_mask",
        ratio(rate(g, "wsmachine"), rate(g, "copy_and_mask")),
        0.85,
        "",
    )
    g = "handshake/server"
    target(
        "handshake: wsmachine ÷ tungstenite",
        ratio(rate(g, "wsmachine", "elem/s"), rate(g, "tungstenite", "elem/s")),
        4,
        "",
    )
    target_lines = ["| target | measured | goal | verdict |", "|---|---|---|---|"] + targets
    return "\n".join(lines), "\n".join(target_lines)


# --------------------------------------------------------------------------------------------
# plot

SERIES = [
    # (group kind, function, label, colour, dashed)
    ("binary", "wsmachine", "wsmachine (binary)", "#d62728", False),
    ("binary", "fastwebsockets", "fastwebsockets (binary)", "#1f77b4", False),
    ("binary", "tungstenite", "tungstenite (binary)", "#2ca02c", False),
    ("binary", "xor_in_place", "copy + in-place XOR (baseline)", "#555555", True),
    ("binary", "memcpy", "memcpy (baseline)", "#aaaaaa", True),
    ("text", "wsmachine", "wsmachine (text, mixed UTF-8)", "#ff9896", False),
    ("text", "fastwebsockets", "fastwebsockets (text)", "#aec7e8", False),
    ("text", "tungstenite", "tungstenite (text)", "#98df8a", False),
]


def size_label(size):
    if size >= 1 << 20:
        return f"{size >> 20} MiB"
    if size >= 1 << 10:
        return f"{size >> 10} KiB"
    return f"{size} B"


def plot(results, path, subtitle):
    width, height = 900, 540
    left, right, top, bottom = 70, 300, 56, 60
    pw, ph = width - left - right, height - top - bottom

    series = []
    for kind, function, label, colour, dashed in SERIES:
        points = []
        for size in SIZES:
            entry = results.get((f"receive/{kind}/{size}", function))
            if entry and "bytes" in entry:
                points.append((size, gib_per_s(entry)))
        if points:
            series.append((label, colour, dashed, kind, points))
    if not series:
        sys.exit("no receive/* results found: run `cargo bench --bench compare` first")

    # Log scales on both axes: small messages differ by factors, large ones by percents.
    values = [v for *_, points in series for _, v in points if v > 0]
    ticks = [m * 10.0 ** e for e in range(-3, 4) for m in (1, 2, 5)]
    ymin = max(t for t in ticks if t <= min(values))
    ymax = min(t for t in ticks if t >= max(values))
    ticks = [t for t in ticks if ymin <= t <= ymax]
    xmin, xmax = math.log2(SIZES[0]), math.log2(SIZES[-1])

    def x(size):
        return left + (math.log2(size) - xmin) / (xmax - xmin) * pw

    def y(v):
        v = max(v, ymin)
        return top + ph - (math.log10(v) - math.log10(ymin)) / (
            math.log10(ymax) - math.log10(ymin)) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="24" font-size="17" font-weight="bold">'
        f"Receive throughput (server, masked frames, one message per frame)</text>",
        f'<text x="{left}" y="43" fill="#555">{escape(subtitle)}</text>',
    ]
    # Grid and axes.
    for v in ticks:
        yy = y(v)
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" '
            f'stroke="#e5e5e5"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{yy + 4:.1f}" text-anchor="end" fill="#333">{v:g}</text>'
        )
    for size in SIZES:
        xx = x(size)
        out.append(
            f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + ph}" stroke="#f0f0f0"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{top + ph + 20}" text-anchor="middle" fill="#333">'
            f"{size_label(size)}</text>"
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>'
    )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 16}" text-anchor="middle">'
        f"payload size per message (log scale)</text>"
    )
    out.append(
        f'<text transform="translate(20 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"payload GiB/s (log scale)</text>"
    )
    # Lines, text ones thinner.
    for label, colour, dashed, kind, points in series:
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{x(s):.1f},{y(v):.1f}" for i, (s, v) in enumerate(points)
        )
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        w = 2.5 if kind == "binary" else 1.8
        out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{w}"{dash}/>')
        for s, v in points:
            out.append(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
    # Legend.
    lx, ly = left + pw + 18, top + 8
    for i, (label, colour, dashed, kind, _points) in enumerate(series):
        yy = ly + i * 22
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(
            f'<line x1="{lx}" y1="{yy}" x2="{lx + 26}" y2="{yy}" stroke="{colour}" '
            f'stroke-width="2.5"{dash}/>'
        )
        out.append(f'<text x="{lx + 32}" y="{yy + 4}">{escape(label)}</text>')
    out.append("</svg>")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion", default="target/criterion", help="criterion's output")
    parser.add_argument("--baseline", default="new", help="criterion baseline to read")
    parser.add_argument("--out", default="docs/receive-throughput.svg", help="SVG to write")
    parser.add_argument("--subtitle", default="", help="second line of the plot's title")
    parser.add_argument("--no-plot", action="store_true", help="print the tables only")
    args = parser.parse_args()

    results = load(args.criterion, args.baseline)
    if not results:
        sys.exit(f"no criterion results under {args.criterion} for baseline {args.baseline!r}")
    rates, targets = tables(results)
    print(rates)
    print()
    print(targets)
    if not args.no_plot:
        plot(results, args.out, args.subtitle or "criterion medians, one run")
        print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
