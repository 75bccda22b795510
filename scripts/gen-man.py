#!/usr/bin/env python3
"""Man pages for the C API, generated from the header's comments.

    scripts/gen-man.py include/aemp.h <outdir>

writes <outdir>/aemp_<fn>.3 for every AEMP_API function and <outdir>/aemp.3,
the overview: the header's conventions, then every function by area.  The
header is the contract (STYLE.md: "the header comment is the contract"), so
the pages say what it says, nothing more: a function's page is the comment
above it, the declarations that share that comment, and the callback and
structure types its signature names.  Run by the build (CMakeLists.txt:
target aemp_man); python3 because the header's layout (comments shared by
several declarations, banners naming the areas) is awkward in awk.

How the header is read: a comment applies to the declarations that follow
it up to the next comment; a comment with a line of dashes is a banner
that starts an area ("Ports", "Monitors", ...).  Declarations under a
banner with no comment of their own get the banner's text.
"""
import os
import re
import sys

API_RE = re.compile(r"\bAEMP_API\b[^;(]*?\b(aemp_\w+)\s*\(")
TYPE_RE = re.compile(r"\b(aemp_\w+_(?:fn|t))\b")


class Comment:
    def __init__(self, lines, banner):
        self.lines = lines  # text lines, the comment markers removed
        self.banner = banner


def comment_text(raw):
    """The lines of a /* ... */ block without the markers, dedented."""
    lines = []
    for n, line in enumerate(raw):
        line = line.strip() if n else line.strip()[2:].lstrip("*").strip()
        if line.endswith("*/"):
            line = line[:-2].rstrip()
        if line.startswith("*"):
            line = line[2:] if line.startswith("* ") else line[1:]
        lines.append(line.rstrip())
    banner = any(re.fullmatch(r"-{10,}", l.strip()) for l in lines)
    lines = [l for l in lines if not re.fullmatch(r"-{10,}", l.strip())]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()),
                 default=0)
    return Comment([l[indent:] for l in lines], banner)


def parse(path):
    """Items in header order: ("comment", Comment), ("decl", text, names),
    ("typedef", text, names)."""
    src = open(path, encoding="utf-8").read().split("\n")
    items, i = [], 0
    while i < len(src):
        line = src[i]
        s = line.strip()
        if s.startswith("/*") and not s.startswith("/*)"):
            raw = [line]
            while "*/" not in raw[-1]:
                i += 1
                raw.append(src[i])
            items.append(("comment", comment_text(raw)))
        elif s.startswith("#"):
            while src[i].rstrip().endswith("\\"):
                i += 1
        elif s.startswith("AEMP_API") or s.startswith("typedef"):
            raw, depth = [line], line.count("{") - line.count("}")
            while depth > 0 or not re.search(r";\s*(/\*.*\*/)?\s*$", raw[-1]):
                i += 1
                raw.append(src[i])
                depth += src[i].count("{") - src[i].count("}")
            text = "\n".join(raw)
            if s.startswith("AEMP_API"):
                names = API_RE.findall(re.sub(r"/\*.*?\*/", "", text,
                                              flags=re.S))
                items.append(("decl", text, names))
            else:
                body = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
                m = re.search(r"\(\s*\*\s*(\w+)\s*\)", body) or \
                    re.search(r"(\w+)\s*;\s*$", body)
                items.append(("typedef", text, [m.group(1)] if m else []))
        elif s.startswith("enum"):  # the log levels: part of the text
            while ";" not in src[i]:
                i += 1
        elif not s:
            items.append(("blank",))
        i += 1
    return items


# Text for declarations the header leaves without a comment of their own
# (their meaning is in the type's comment above them).
OWN = {
    "aemp_ctx_node": "The node of the port whose callback is running (the\n"
                     "ctx a receive or task callback gets).",
}
# Better one-line summaries where the comment's first sentence is not one.
SUMMARY = {
    "aemp_initialise": "initialise_node: join a network as the "
                       "configuration says",
    "aemp_val_type": "the type of a value",
    "aemp_module_path_add": "adds a directory to the node's module path",
}


class Group:
    """Declarations sharing one comment, and the typedefs among them."""

    def __init__(self, area, comment, banner=None):
        self.area, self.comment, self.banner = area, comment, banner
        self.decls, self.names, self.typedefs = [], [], []


def groups_of(items):
    """A comment followed by typedefs and a blank line documents those
    types only: declarations after that blank line get the area's banner
    (or, with none, their entry in OWN)."""
    groups, area, banner, cur, typedefs = [], "", None, None, {}
    for item in items:
        if item[0] == "comment":
            c = item[1]
            if c.banner:
                first = c.lines[0] if c.lines else ""
                area = re.split(r"[.(:]", first)[0].strip() or first
                banner = c if len(c.lines) > 1 else None
            cur = Group(area, c, banner)
            groups.append(cur)
        elif cur is None:
            continue
        elif item[0] == "blank":
            if cur.typedefs and not cur.decls:
                cur = Group(area, banner, banner)
                groups.append(cur)
        elif item[0] == "typedef":
            cur.typedefs.append(item[1])
            for name in item[2]:
                typedefs[name] = (item[1], cur.comment)
        else:
            cur.decls.append(item[1])
            cur.names += item[2]
    for g in groups:
        if g.names and g.comment is None:
            g.comment = Comment(OWN[g.names[0]].split("\n"), False)
    return [g for g in groups if g.names], typedefs


def esc(text):
    text = text.replace("\\", "\\e")
    return "\n".join("\\&" + l if l[:1] in (".", "'") else l
                     for l in text.split("\n"))


def prose(lines):
    """Comment lines as roff: paragraphs at the base indent are filled,
    indented lines (tables, code, lists) kept as they are."""
    out, mode = [], None
    for line in lines:
        want = None if not line.strip() else \
            "ex" if line.startswith(" ") else "fill"
        if want != mode and mode == "ex":
            out.append(".EE")
        if want is None:
            if out and out[-1] != ".PP":
                out.append(".PP")
        elif want == "ex":
            if mode != "ex":
                out.append(".EX")
            out.append(esc(line))
        else:
            out.append(esc(line.strip()))
        mode = want
    if mode == "ex":
        out.append(".EE")
    while out and out[-1] == ".PP":
        out.pop()
    return out


def summary(group):
    if group.names[0] in SUMMARY:
        return SUMMARY[group.names[0]]
    lines = group.comment.lines
    if group.comment.banner:  # "Values" + its text: "values: the JSON..."
        title, lines = lines[0], lines[1:]
        text = " ".join(l.strip() for l in lines if l.strip())
        return title.lower() + ": " + summary_of(text, 70 - len(title))
    return summary_of(" ".join(l.strip() for l in lines if l.strip()), 70)


def summary_of(text, width):
    """The first sentence: up to a full stop outside parentheses."""
    text = re.sub(r"^\w+:\s+", "", text)  # "spawn: creates ..." -> "creates"
    depth, end = 0, len(text)
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch in ".;" and depth <= 0 and text[i + 1:i + 2] in ("", " ") \
                and not text[:i + 1].endswith(("e.g.", "i.e.")):
            end = i
            break
    s = text[:end]
    if len(s) > width:
        s = s[:width - 3].rsplit(" ", 1)[0] + "..."
    return s[:1].lower() + s[1:] if not s[1:2].isupper() else s


def th(name, version):
    return ('.TH %s 3 "" "aemp %s" "aemp manual"\n.nh\n.ad l\n'
            % (name.upper(), version))


def unexport(decl):
    """A declaration without AEMP_API, its continuation lines moved left
    by as much, so that they stay aligned under the parenthesis."""
    if not decl.startswith("AEMP_API "):
        return decl
    first, *rest = decl.split("\n")
    w = len("AEMP_API ")
    return "\n".join([first[w:]] + [l[w:] if l[:w].isspace() else l
                                     for l in rest])


def synopsis(decls):
    text = "\n\n".join(unexport(d) for d in decls)
    return [".SH SYNOPSIS", ".EX", "#include <aemp.h>", "", esc(text), ".EE"]


def page(group, name, typedefs, version, by_area):
    out = [th(name, version).rstrip("\n"), ".SH NAME",
           "%s \\- %s" % (", ".join(group.names), esc(summary(group)))]
    shown = set()
    for t in group.typedefs:
        shown.update(TYPE_RE.findall(t))
    extra = []
    for t in TYPE_RE.findall(" ".join(group.decls)):
        if t in shown or t not in typedefs:
            continue
        text, comment = typedefs[t]
        if "{" not in text and "(*" not in text.replace(" ", ""):
            continue  # an opaque handle: aemp(3) says what those are
        shown.add(t)
        extra.append((t, text, comment))
    out += synopsis(group.typedefs + group.decls)
    out += [".SH DESCRIPTION"] + prose(group.comment.lines)
    for t, text, comment in extra:
        out += [".SS %s" % t, ".EX", esc(text), ".EE"]
        if comment is not group.comment:
            out += prose(comment.lines)
    if group.banner is not None and group.banner is not group.comment:
        # the area's rules (pictures, monitors' guarantees, networking)
        lines = group.banner.lines
        if lines[0].strip() == group.area:
            lines = lines[1:]
        out += [".SS %s" % esc(group.area)] + prose(lines)
    out += [".PP", "Errors, ownership and threads follow the conventions "
            "in", ".BR aemp (3)."]
    others = [n for n in by_area[group.area] if n not in group.names][:12]
    out += [".SH SEE ALSO", ".BR aemp (3)" + ("," if others else "")]
    out += [".BR %s (3)%s" % (n, "," if i < len(others) - 1 else "")
            for i, n in enumerate(others)]
    return "\n".join(out) + "\n"


def overview(items, groups, version):
    conventions = next(i[1] for i in items if i[0] == "comment")
    lines = conventions.lines[:]
    while lines and not lines[0].startswith("This header"):
        lines.pop(0)  # the title line: NAME says it
    out = [th("aemp", version).rstrip("\n"), ".SH NAME",
           "aemp \\- Erlang-inspired, event-based message passing for C",
           ".SH SYNOPSIS", ".EX", "#include <aemp.h>", "",
           "cc app.c $(pkg\\-config \\-\\-cflags \\-\\-libs aemp)", ".EE",
           ".SH DESCRIPTION",
           "A program makes a node, creates ports with receive callbacks, "
           "sends them messages with", ".BR aemp_snd (3)",
           "and watches them with the monitors of", ".BR aemp_mon_cb (3);",
           "with a configuration (the file the", ".BR aemp (1)",
           "tool writes) the node joins a network, and", ".BR aemp_spawn (3)",
           "starts ports on other nodes.  The tutorial",
           ".I docs/tutorial.md",
           "(installed under share/doc/aemp) walks through it; the examples "
           "are installed in share/doc/aemp/examples.",
           ".SS Conventions", ".EX", esc("\n".join(lines)), ".EE",
           ".SH FUNCTIONS"]
    areas = []
    for g in groups:
        if g.area not in areas:
            areas.append(g.area)
    for area in areas:
        out.append(".SS %s" % esc(area or "General"))
        for g in groups:
            if g.area == area:
                refs = " ".join('%s "(3)%s"' % (n, ", " if k < len(g.names) - 1
                                               else "")
                                for k, n in enumerate(g.names))
                out += [".TP", ".BR " + refs, esc(summary(g))]
    out += [".SH SEE ALSO", ".BR aemp (1)", ".PP",
            "The wire protocol: docs/PROTOCOL.md in the aemp sources; Perl "
            "peers: docs/PERL.md."]
    return "\n".join(out) + "\n"


def main():
    header, outdir = sys.argv[1], sys.argv[2]
    items = parse(header)
    version = re.search(r'AEMP_VERSION_STRING "([^"]+)"',
                        open(header, encoding="utf-8").read()).group(1)
    groups, typedefs = groups_of(items)
    by_area = {}
    for g in groups:
        by_area.setdefault(g.area, []).extend(g.names)
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):  # no stale page of a removed function
        if f.endswith(".3"):
            os.remove(os.path.join(outdir, f))
    for g in groups:
        for name in g.names:
            with open(os.path.join(outdir, name + ".3"), "w",
                      encoding="utf-8") as f:
                f.write(page(g, name, typedefs, version, by_area))
    with open(os.path.join(outdir, "aemp.3"), "w", encoding="utf-8") as f:
        f.write(overview(items, groups, version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
