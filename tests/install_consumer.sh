#!/bin/sh
# Installs the build into a scratch prefix and builds a program against it
# twice — with pkg-config and with CMake's find_package(aemp) — then runs
# both: the installed header, libraries, aemp.pc (relocatable) and CMake
# package work for a user.  Usage: install_consumer.sh <build-dir> [cflags]
set -eu
build=$1
flags=${2:-}
tmp=$(mktemp -d /tmp/aemp-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/share/man/man1/aemp.1"
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
