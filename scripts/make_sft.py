#!/usr/bin/python3
"""Build-time tool (not runtime): turns the raw text that scripts/corpus.sh extracted from Debian
packages into baimo's default-model corpus.

  make_sft.py RAWDIR OUTDIR

RAWDIR holds fortunes/<name>.txt (fortune files, UTF-8, ANSI colours stripped, entries separated
by lines "%") and man/<section>/<page>.txt (zh_CN manual pages rendered to plain text).
Writes
  OUTDIR/pretrain.txt  every distinct document, each followed by a line "<|endoftext|>"
                       (the tokenizer's document separator; exact duplicates removed)
  OUTDIR/sft.jsonl     {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]} pairs
                       derived from the poems (title/author lines) and the man pages (NAME and
                       SYNOPSIS sections)
  OUTDIR/stats.json    counts
Deterministic: no randomness, files read in sorted order.
"""
import json
import os
import re
import sys
from collections import OrderedDict, defaultdict

SEP = "<|endoftext|>"
TITLE_RE = re.compile(r"^(?:题目[:：])?\s*(.*《[^》]+》.*)$")
AUTHOR_RE = re.compile(r"^作者[:：]\s*(.+)$")
CLAUSE_RE = re.compile(r"[^，。？！；：、,.?!;:]+[，。？！；：、,.?!;:]?")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def fortune_entries(text):
    return [e.strip("\n") for e in re.split(r"\n%\n|^%\n", text + "\n") if e.strip()]


def parse_poem(entry):
    """(title, author, body lines) of a poem entry, or None."""
    lines = [l.strip() for l in entry.split("\n")]
    if len(lines) < 3:
        return None
    m, a = TITLE_RE.match(lines[0]), AUTHOR_RE.match(lines[1])
    if not m or not a:
        return None
    title_full = m.group(1).strip()
    title = re.search(r"《([^》]+)》", title_full).group(1).strip()
    author = re.sub(r"[（(][^）)]*[）)]", "", a.group(1)).strip()
    body = [l for l in lines[2:] if l]
    if not title or not author or not body:
        return None
    return title, author, body


def clauses(body):
    out = []
    for line in body:
        out += [c.strip() for c in CLAUSE_RE.findall(line) if c.strip()]
    return out


def pair(user, assistant, kind):
    return kind, {"messages": [{"role": "user", "content": user},
                               {"role": "assistant", "content": assistant}]}


def poem_pairs(poems):
    by_title = defaultdict(set)
    by_author = OrderedDict()
    for t, a, _ in poems:
        by_title[t].add(a)
        by_author.setdefault(a, [])
        if t not in by_author[a]:
            by_author[a].append(t)
    seen = set()
    for t, a, body in poems:
        if (t, a) in seen:  # same title and author twice (e.g. two parts): keep the first
            continue
        seen.add((t, a))
        unique = len(by_title[t]) == 1
        text = "\n".join(body)
        if unique:
            yield pair(f"《{t}》的作者是谁？", f"《{t}》的作者是{a}。", "author")
            yield pair(f"请背诵《{t}》。", text, "recite")
        yield pair(f"请背诵{a}的《{t}》。", text, "recite")
        cl = clauses(body)
        for i in range(len(cl) - 1):
            cur, nxt = cl[i], cl[i + 1]
            yield pair(f"{a}的《{t}》中，“{cur.rstrip('，。？！；：、')}”的下一句是什么？",
                       f"下一句是“{nxt.rstrip('，。？！；：、')}”。", "next_line")
        if cl:
            yield pair(f"“{cl[0].rstrip('，。？！；：、')}”出自哪首诗？",
                       f"出自{a}的《{t}》。", "source")
    for a, titles in by_author.items():
        if len(titles) >= 2:
            shown = "、".join(f"《{t}》" for t in titles[:12])
            more = "等" if len(titles) > 12 else ""
            yield pair(f"{a}写过哪些诗？", f"{a}的诗有{shown}{more}。", "author_works")


def man_doc(text):
    """Plain text of a rendered page without the header/footer lines, dedented."""
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 3:
        return None
    lines = lines[1:-1]  # "LS(1)  用户命令  LS(1)" and the footer
    out, blank = [], False
    for l in lines:
        l = l.rstrip()
        l = l[7:] if l.startswith("       ") else l
        if not l:
            if not blank and out:
                out.append("")
            blank = True
            continue
        blank = False
        out.append(l)
    doc = "\n".join(out).strip()
    return doc or None


def man_section(doc, names):
    """Lines of the first section whose heading is in names (headings are unindented)."""
    lines = doc.split("\n")
    for i, l in enumerate(lines):
        if l.strip() in names and not l.startswith(" "):
            body = []
            for m in lines[i + 1:]:
                if m and not m.startswith(" ") and body:
                    break
                if m or body:
                    body.append(m)
            return [b.strip() for b in body if b.strip()]
    return []


def man_pairs(pages):
    for cmd, sec, doc in pages:
        name = man_section(doc, {"名称", "名字", "NAME", "名 称"})
        if not name:
            continue
        line = " ".join(name)
        m = re.match(r"^(.+?)\s+[-－—–]+\s*(.+)$", line)
        if not m or len(line) > 200:
            continue
        what = m.group(2).strip().rstrip("。.")
        if not re.search(r"[\u4e00-\u9fff]", what):
            continue  # English NAME line: not useful as a Chinese answer
        if sec in ("1", "6", "8"):
            q = f"{cmd} 命令是做什么的？"
        elif sec == "2":
            q = f"系统调用 {cmd} 是做什么的？"
        elif sec == "5":
            q = f"{cmd} 文件是做什么的？"
        else:
            q = f"第 {sec} 节手册页里的 {cmd} 是什么？"
        yield pair(q, f"{m.group(1).strip()} - {what}", "man_name")
        syn = man_section(doc, {"概述", "总览", "摘要", "SYNOPSIS", "大纲", "语法"})
        if syn and sum(len(s) for s in syn) <= 400:
            syn = [re.sub(r"\s{2,}", " ", x) for x in syn]
            yield pair(f"{cmd} 的用法是什么？", "\n".join(syn), "man_synopsis")


def main():
    raw, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    docs, poems, pages = [], [], []
    fdir = os.path.join(raw, "fortunes")
    for fn in sorted(os.listdir(fdir)):
        for e in fortune_entries(read(os.path.join(fdir, fn))):
            docs.append(e)
            p = parse_poem(e)
            if p:
                poems.append(p)
    mdir = os.path.join(raw, "man")
    for sec in sorted(os.listdir(mdir)):
        for fn in sorted(os.listdir(os.path.join(mdir, sec))):
            d = man_doc(read(os.path.join(mdir, sec, fn)))
            if d:
                docs.append(d)
                pages.append((fn[:-len(".txt")], sec, d))
    seen, uniq = set(), []
    for d in docs:
        k = re.sub(r"\s+", " ", d).strip()
        if k not in seen:
            seen.add(k)
            uniq.append(d)
    with open(os.path.join(out, "pretrain.txt"), "w", encoding="utf-8") as f:
        for d in uniq:
            f.write(d.replace(SEP, "") + "\n" + SEP + "\n")
    kinds = defaultdict(int)
    seen_q = set()
    with open(os.path.join(out, "sft.jsonl"), "w", encoding="utf-8") as f:
        for kind, obj in list(poem_pairs(poems)) + list(man_pairs(pages)):
            q = obj["messages"][0]["content"]
            if q in seen_q:
                continue
            seen_q.add(q)
            kinds[kind] += 1
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    size = os.path.getsize(os.path.join(out, "pretrain.txt"))
    stats = {"documents": len(uniq), "documents_before_dedup": len(docs), "poems": len(poems),
             "man_pages": len(pages), "pretrain_bytes": size,
             "sft_pairs": sum(kinds.values()), "sft_by_kind": dict(sorted(kinds.items()))}
    with open(os.path.join(out, "stats.json"), "w") as f:
        json.dump(stats, f, ensure_ascii=False, indent=1)
    print(json.dumps(stats, ensure_ascii=False))


if __name__ == "__main__":
    main()
