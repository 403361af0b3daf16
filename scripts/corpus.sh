#!/usr/bin/env bash
# Builds the default model's corpus from Debian packages (build-time only):
#   scripts/corpus.sh OUTDIR
# Installs fortunes-zh (Tang/Song poems, Chinese sayings in /usr/share/games/fortunes/) and
# manpages-zh (Chinese manual pages in /usr/share/man/zh_CN/) with apt-get when absent, converts
# the fortunes to UTF-8 (iconv from GB18030 when a file is not UTF-8 already) without ANSI
# colours, renders every zh_CN man page to plain text (groff -Tutf8 -mandoc, col -bx: offline;
# `man -l` hung on some pages), then runs scripts/make_sft.py: OUTDIR/pretrain.txt (documents
# each followed by a line <|endoftext|>,
# deduplicated), OUTDIR/sft.jsonl (chat pairs), OUTDIR/stats.json. Raw text stays in OUTDIR/raw.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/corpus.sh OUTDIR" >&2; exit 2; }
out=$1
here=$(cd "$(dirname "$0")" && pwd)

need=()
for p in fortunes-zh manpages-zh groff-base; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "corpus: installing ${need[*]}" >&2
  $sudo apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
    { $sudo apt-get update >&2 && $sudo apt-get install -y --no-install-recommends "${need[@]}" >&2; }
fi

raw=$out/raw
rm -rf "$raw"
mkdir -p "$raw/fortunes" "$raw/man"
fdir=/usr/share/games/fortunes
for name in tang300 song100 chinese; do
  src=$fdir/$name
  [ -f "$src" ] || { echo "corpus: $src missing (fortunes-zh changed?)" >&2; exit 1; }
  if iconv -f UTF-8 -t UTF-8 "$src" >/dev/null 2>&1; then cat "$src"; else iconv -f GB18030 -t UTF-8 "$src"; fi |
    sed -e 's/\x1b\[[0-9;]*m//g' > "$raw/fortunes/$name.txt"
done

render() { # page.gz -> RAW/man/<section>/<name>.txt
  local f=$1 raw=$2 sec base
  sec=$(basename "$(dirname "$f")"); sec=${sec#man}
  base=$(basename "$f" .gz); base=${base%.*}
  mkdir -p "$raw/man/$sec"
  zcat "$f" | timeout 30 groff -Tutf8 -mandoc -Kutf8 -rLL=80n 2>/dev/null | col -bx \
    > "$raw/man/$sec/$base.txt" || rm -f "$raw/man/$sec/$base.txt"
}
export -f render
find /usr/share/man/zh_CN -type f -name '*.gz' | sort |
  xargs -P "$(nproc)" -I{} bash -c 'render "$1" "$2"' _ {} "$raw"
find "$raw/man" -type f -empty -delete

/usr/bin/python3 "$here/make_sft.py" "$raw" "$out"
