#!/bin/sh
# Installs the build into a scratch prefix and builds a program against it
# twice — with pkg-config and with CMake's find_package(aemp) — then runs
# both: the installed header, libraries, aemp.pc (relocatable) and CMake
# package work for a user.  Then what a user gets besides: the installed
# `aemp` runs without LD_LIBRARY_PATH (its run path is relative to the
# binary, so also after the prefix is moved), the man pages (aemp(1),
# aemp(3), one per AEMP_API function of the installed header) and the
# examples' sources, which build on their own against the prefix — from
# the installed copy with CMAKE_PREFIX_PATH, from the source tree with
# PKG_CONFIG_PATH — and run.
# Usage: install_consumer.sh <build-dir> [cflags]
set -eu
build=$1
flags=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/aemp-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_consumer: $*" >&2; exit 1; }
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
p=$tmp/prefix
test -f "$p/share/man/man1/aemp.1" || fail "no man1/aemp.1"

# the tool finds its library with nothing set, also from a moved prefix
unset LD_LIBRARY_PATH
out=$("$p/bin/aemp" --version) || fail "installed aemp --version failed"
case $out in "aemp "*) ;; *) fail "aemp --version said: $out" ;; esac
mv "$p" "$tmp/moved"
"$tmp/moved/bin/aemp" --version >/dev/null ||
    fail "aemp does not run from a moved prefix"
mv "$tmp/moved" "$p"

# man pages: the overview and one per public function
m3=$p/share/man/man3
test -f "$m3/aemp.3" || fail "no man3/aemp.3"
for fn in $(sed -n 's/^AEMP_API[^(]*[^a-z0-9_]\(aemp_[a-z0-9_]*\)(.*/\1/p' \
    "$p/include/aemp.h"); do
    test -s "$m3/$fn.3" || fail "no installed man page for $fn"
done

# the examples' sources, built on their own and run
doc=$p/share/doc/aemp
for f in CMakeLists.txt pingpong.c chat_server.c chat_client.c job_pool.c \
    jobs.c; do
    test -f "$doc/examples/$f" || fail "examples/$f not installed"
done
test -f "$doc/tutorial.md" || fail "docs/tutorial.md not installed"
cmake -S "$doc/examples" -B "$tmp/ex1" -DCMAKE_PREFIX_PATH="$p" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
    -DCMAKE_MODULE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$tmp/ex1" >/dev/null
PKG_CONFIG_PATH=$p/lib/pkgconfig:$p/${AEMP_LIBDIR:-lib}/pkgconfig \
    cmake -S "$src/examples" -B "$tmp/ex2" -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_MODULE_LINKER_FLAGS="$flags" \
    >/dev/null
cmake --build "$tmp/ex2" >/dev/null
for d in ex1 ex2; do
    for f in pingpong chat_server chat_client job_pool jobs.so; do
        test -e "$tmp/$d/$f" || fail "$d: $f not built"
    done
    "$tmp/$d/pingpong" 1000 | grep -q '^1000 round trips' ||
        fail "$d: pingpong did not play"
done
cat >"$tmp/app.c" <<'C'
#include <aemp.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    aemp_node_t *n;
    const char *port;
    if (aemp_node_new(&n, NULL) || aemp_port(n, NULL, NULL, &port))
        return 1;
    printf("%s\n", port);
    int ok = strchr(port, '#') != NULL;
    aemp_node_free(n);
    return ok ? 0 : 1;
}
C
pc="$tmp/prefix/lib/pkgconfig"
[ -d "$pc" ] || pc=$(dirname "$(find "$tmp/prefix" -name aemp.pc)")
# shellcheck disable=SC2046,SC2086
cc $flags "$tmp/app.c" -o "$tmp/app-pc" \
    $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs aemp) \
    -Wl,-rpath,"$(PKG_CONFIG_PATH="$pc" pkg-config --variable=libdir aemp)"
"$tmp/app-pc"
mkdir "$tmp/cm"
cat >"$tmp/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(app C)
find_package(aemp 0.1 REQUIRED)
add_executable(app $tmp/app.c)
target_compile_options(app PRIVATE $flags)
target_link_options(app PRIVATE $flags)
target_link_libraries(app aemp::aemp)
CM
cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm/b" >/dev/null
"$tmp/cm/b/app"
echo "install_consumer: pkg-config and find_package consumers built and ran"
