#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# The shared library exports exactly the functions include/muser.h declares,
# and a program taking the address of each one links against it.
#
# usage: check-exports.sh HEADER LIBMUSER_SO CC INCLUDE_DIR...
# EXTRA_CFLAGS in the environment is added to the compile (e.g. sanitizers).
#
# Every prototype in the header starts its line with MUSER_EXPORT; a line
# that declares a muser_ function without it is an error too.
set -eu

header=$1 lib=$2 cc=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

sed -n 's/^MUSER_EXPORT[^(]*[ *]\(muser_[a-z0-9_]*\)(.*/\1/p' "$header" |
	sort >"$tmp/header"
[ -s "$tmp/header" ] || { echo "no MUSER_EXPORT prototypes in $header"; exit 1; }

# Declarations of muser_ functions not marked for export.
if grep -nE '^[a-z][a-z0-9_ ]*[ *]muser_[a-z0-9_]*\(' "$header" |
	grep -vE ':(MUSER_EXPORT|typedef) '; then
	echo "^ declared without MUSER_EXPORT"
	fail=1
fi

nm -D --defined-only "$lib" | awk '$2 ~ /^[TWi]$/ { sub(/@.*/, "", $3); print $3 }' |
	grep -vxE '_init|_fini' | sort >"$tmp/lib"

if ! diff -u "$tmp/header" "$tmp/lib" >"$tmp/diff"; then
	echo "exports differ (- header only, + library only):"
	cat "$tmp/diff"
	fail=1
fi

{
	echo '#include <muser.h>'
	echo 'typedef void (*fn)(void);'
	echo 'static const fn fns[] = {'
	sed 's/.*/\t(fn)&,/' "$tmp/header"
	echo '};'
	echo 'int main(void)'
	echo '{'
	echo '	unsigned int i;'
	echo ''
	echo '	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)'
	echo '		if (!fns[i])'
	echo '			return 1;'
	echo '	return 0;'
	echo '}'
} >"$tmp/links.c"

incs=""
for d in "$@"; do
	incs="$incs -I$d"
done
# shellcheck disable=SC2086
"$cc" -std=gnu11 -Wall -Wextra -Werror ${EXTRA_CFLAGS:-} $incs -o "$tmp/links" "$tmp/links.c" \
	"$lib" -Wl,-rpath,"$(dirname "$lib")"
"$tmp/links" || { echo "the program taking every address failed"; fail=1; }

[ "$fail" -eq 0 ] && echo "$(wc -l <"$tmp/header") functions: header and library agree"
exit "$fail"
