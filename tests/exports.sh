#!/bin/sh
# libdlas exports its public API and nothing else: every dynamic symbol it
# defines is declared in core/include/dlas/, and every function declared
# there (other than static inline helpers and the plugins' own entry point)
# is defined. Run by `make check` on the built library.
set -u
src=${DLAS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${DLAS_BUILDDIR:-.}
lib=$build/.libs/libdlas.so
[ -e "$lib" ] || { echo "exports: SKIP: no $lib (static build?)"; exit 77; }
command -v nm >/dev/null || { echo "exports: SKIP: no nm"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sh "$src/core/public-symbols.sh" "$src"/core/include/dlas/*.h >"$tmp/public"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ { print $3 }' | sed 's/@.*//' |
    LC_ALL=C sort -u >"$tmp/exported"
# names in the headers that are not library symbols by design
# (declarations joined into one line: a return type may stand on its own line)
cat "$src"/core/include/dlas/*.h | tr '\n' ' ' |
    grep -o 'static inline[^;{(]*\bdlas_[a-z0-9_]*[[:space:]]*(' |
    grep -o 'dlas_[a-z0-9_]*[[:space:]]*(' | sed 's/[[:space:]]*($//' >"$tmp/inline"
echo dlas_plugin_entry >>"$tmp/inline"
LC_ALL=C sort -u -o "$tmp/inline" "$tmp/inline"

status=0
LC_ALL=C comm -23 "$tmp/exported" "$tmp/public" >"$tmp/extra"
if [ -s "$tmp/extra" ]; then
    echo "exports: FAIL: libdlas exports symbols that no public header declares:"
    sed 's/^/    /' "$tmp/extra"
    status=1
fi
LC_ALL=C comm -23 "$tmp/public" "$tmp/exported" | LC_ALL=C comm -23 - "$tmp/inline" >"$tmp/missing"
if [ -s "$tmp/missing" ]; then
    echo "exports: FAIL: declared in core/include/dlas/ but not exported by libdlas:"
    sed 's/^/    /' "$tmp/missing"
    status=1
fi
[ $status -eq 0 ] && echo "exports: ok: $(wc -l <"$tmp/exported") symbols, all declared in core/include/dlas/"
exit $status
