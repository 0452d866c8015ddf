#!/usr/bin/env python3
"""Write procflow(8), a man page, from the README's "Usage" section.

The README is the one place the command line is documented; the man page is
made from it at install time so that the two cannot disagree. The section's
first code block is the synopsis, its paragraphs before the options table the
description, the table the options, and the paragraphs after it the notes.

usage: readme2man.py README.md VERSION > procflow.8
"""
import re
import sys


def section(text, title):
    """The lines of the '## title' section, without its heading."""
    lines = text.splitlines()
    try:
        start = lines.index("## " + title) + 1
    except ValueError:
        sys.exit(f"readme2man: no '## {title}' section in the README")
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def blocks(lines):
    """Split into ('code', lines), ('table', rows) and ('para', text) blocks."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(("code", lines[i + 1:j]))
            i = j + 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            out.append(("table", rows))
        elif line.strip():
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("```", "|")):
                para.append(lines[i].strip())
                i += 1
            out.append(("para", " ".join(para)))
        else:
            i += 1
    return out


def esc(s):
    """Escape for roff: backslashes, and minus signs that are options."""
    return s.replace("\\", "\\e").replace("-", "\\-")


def inline(s):
    """Markdown inline markup to roff: links to their text, `code` in bold."""
    s = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", s)
    parts = re.split(r"(`[^`]*`)", s)
    out = []
    for p in parts:
        if p.startswith("`") and p.endswith("`") and len(p) >= 2:
            out.append("\\fB" + esc(p[1:-1]) + "\\fR")
        else:
            out.append(esc(p.replace("**", "")))
    return "".join(out)


def line(s):
    """A text line that roff must not take for a request."""
    return "\\&" + s if s.startswith((".", "'")) else s


def cells(row):
    # "\|" is a literal bar inside a cell.
    row = row.strip().strip("|").replace("\\|", "\x00")
    return [c.strip().replace("\x00", "|") for c in row.split("|")]


def options(rows):
    out = []
    head = [c.lower() for c in cells(rows[0])]
    for row in rows[2:]:
        c = dict(zip(head, cells(row)))
        out.append(".TP")
        out.append(line(inline(c.get("option", ""))))
        text = inline(c.get("meaning", ""))
        extra = []
        if c.get("key"):
            extra.append("key " + inline(c["key"]))
        if c.get("default"):
            extra.append("default " + inline(c["default"]))
        if extra:
            text += " (" + ", ".join(extra) + ")."
        out.append(line(text))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: readme2man.py README.md VERSION")
    with open(sys.argv[1], encoding="utf-8") as f:
        usage = blocks(section(f.read(), "Usage"))
    version = sys.argv[2]

    out = [
        '.TH PROCFLOW 8 "" "procflow %s" "System Administration"' % version,
        ".SH NAME",
        "procflow \\- network flow logs that name the process behind every TCP and UDP flow",
    ]
    synopsis_done = False
    table_done = False
    started_desc = False
    for kind, body in usage:
        if kind == "code" and not synopsis_done:
            out += [".SH SYNOPSIS", ".nf"] + [line(esc(l)) for l in body] + [".fi"]
            synopsis_done = True
        elif kind == "code":
            out += [".PP", ".nf"] + [line(esc(l)) for l in body] + [".fi"]
        elif kind == "table" and not table_done:
            out += [".SH OPTIONS"] + options(body) + [".SH NOTES"]
            table_done = True
        elif kind == "table":
            out += [".PP", ".nf"] + [line(esc(r)) for r in body] + [".fi"]
        else:
            if not table_done and not started_desc:
                out.append(".SH DESCRIPTION")
                started_desc = True
            out += [".PP", line(inline(body))]
    if not table_done:
        sys.exit("readme2man: the Usage section has no options table")
    out += [
        ".SH FILES",
        ".TP",
        "/etc/procflow/procflow.yaml",
        "the configuration file (every key, commented out, with its default)",
        ".TP",
        "/var/log/procflow/flows.log",
        "the flow log (and flows.log.1 ... when rotated)",
        ".TP",
        "/run/procflow/procflow.pid",
        "the running agent's PID, read by \\fBprocflow reload\\fR",
        ".SH SEE ALSO",
        "The README (configuration keys, the records, privileges, deployment).",
    ]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
