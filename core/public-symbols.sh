#!/bin/sh
# The public API of libdlas: every dlas_ function and variable declared in
# the installed headers (core/include/dlas/*.h), one name a line, sorted.
# libdlas exports exactly these (libtool -export-symbols); tests/exports.sh
# checks that the library's dynamic symbols are this list.
#
#   core/public-symbols.sh HEADER...
set -eu
# Comments out, one declaration per line, then: a name followed by "(" is a
# function (a declaration or a call from an inline helper), an "extern" one
# a variable.
sed -e 's|/\*.*\*/||g' -e 's|//.*||' "$@" |
    awk '
        /\/\*/ { incomment = 1; sub(/\/\*.*/, "") }
        incomment { if (/\*\//) { incomment = 0; sub(/.*\*\//, "") } else next }
        { print }' |
    grep -v '^[[:space:]]*#' |
    {
        tmp=$(cat)
        printf '%s\n' "$tmp" | grep -o '\bdlas_[a-z0-9_]*[[:space:]]*(' | sed 's/[[:space:]]*($//'
        printf '%s\n' "$tmp" | grep '^[[:space:]]*extern\b' |
            grep -o '\bdlas_[a-z0-9_]*[[:space:]]*\(\[[^]]*\]\)*[[:space:]]*;' |
            sed 's/[[:space:]]*\(\[[^]]*\]\)*[[:space:]]*;$//'
    } | LC_ALL=C sort -u
