#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host test: every function the documentation names with its file,
# "`f()` (`dir/file.c`)" or "`f()` in `dir/file.c`", is defined in that
# file, so that a reader following the README finds it where it says.
#
#   selftests/docs/names.sh [FILE.md...]     (default: README.md docs/*.md)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
[ $# -gt 0 ] || set -- README.md docs/*.md

checked=0 bad=0
for md in "$@"; do
	# Join lines: a name and its file are often on two lines.
	while read -r fn file; do
		checked=$((checked + 1))
		if [ ! -f "$file" ]; then
			echo "FAIL: $md: $fn(): no file $file"
			bad=$((bad + 1))
		elif ! grep -qE "^([A-Za-z_].*[ *])?$fn\(" "$file"; then
			echo "FAIL: $md: $fn() is not defined in $file"
			bad=$((bad + 1))
		fi
	done < <(tr '\n' ' ' <"$md" | tr -s ' ' |
		 grep -oP '`[A-Za-z_][A-Za-z0-9_]*\(\)` (\(|in )`[A-Za-z0-9_./-]+\.[ch]`' |
		 sed -E 's/^`([A-Za-z0-9_]+)\(\)` (\(|in )`([^`]+)`$/\1 \3/')
done
echo "docs: $checked names checked, $bad not where the text says"
[ "$checked" -gt 0 ] && [ "$bad" -eq 0 ]
