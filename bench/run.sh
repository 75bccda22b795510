#!/bin/sh
# Builds the benchmarks in Release and runs them, printing everything:
# bench_local (one node), then bench_net (two nodes in two processes on
# loopback, beside raw TCP, ZeroMQ and distributed Erlang).
#
#   bench/run.sh [--build-dir DIR] [--profile] [--only local|net|unpaced]
#                [--net "bench_net options"] [-- bench_local options]
#
# As root it first installs what the comparisons need (Debian's erlang-nox
# and libzmq3-dev, through scripts/deps.sh); otherwise it says what is
# missing and runs without it.
# DIR defaults to build-bench/ at the top of the source tree.  --profile
# also runs the delivery, ping-pong and port-churn paths under
# `valgrind --tool=callgrind` (instruction counts: repeatable whatever else
# the machine does) and under `perf record -e cpu-clock` (time; software
# clock, since hardware counters are not available on every machine), and
# prints the most expensive functions per message / per port; with bench_net
# it also profiles the receiving process under the unpaced flood (issue 7:
# `perf record -e cpu-clock` wrapped around the receiver of one 5 s CBOR
# flood, through bench_net --receiver-wrap; callgrind would slow the
# receiver some 50x and so change the very load being profiled).
# --only unpaced runs just bench_net's unpaced-flood figures (issue 7) and
# the paced one-way figures they are compared with.
# Every aemp figure of bench_net is measured over plain TCP (hmac_sha3_512)
# and over TLS (tls_sha3_512, a certificate bench_net makes at start) in
# the same run, with the ratios TLS / plain, and the rate of authenticated
# link set-ups beside distributed Erlang's (issue 9); --net "--tls plain"
# leaves TLS out, --net "--only aemp,erlang,setup" runs only the set-ups.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-bench
profile=0
only=
net_opts=
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) build=$2; shift 2 ;;
    --profile) profile=1; shift ;;
    --only) only=$2; shift 2 ;;
    --net) net_opts=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--build-dir DIR] [--profile] [--only local|net|unpaced]" \
            "[--net \"bench_net options\"] [-- bench_local options]" >&2
       exit 2 ;;
    esac
done

# the comparisons' packages (a no-op when present; only reports when not root)
"$root/scripts/deps.sh" erlang-nox libzmq3-dev ||
    echo "(running without the missing comparisons)"

machine() {
    echo "== machine"
    echo "nproc:  $(nproc)"
    echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" \
         "(family $(grep -m1 'cpu family' /proc/cpuinfo | sed 's/.*: //')," \
         "model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | sed 's/.*: //'))"
    echo "kernel: $(uname -sr)"
    echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min averages)"
    echo "cc:     $(cc --version | head -n1)"
    echo "libc:   $(ldd --version 2>&1 | head -n1)"
    echo "libuv:  $(pkg-config --modversion libuv 2>/dev/null || echo '?')," \
         "libzmq: $(pkg-config --modversion libzmq 2>/dev/null || echo 'not installed')"
    if command -v erl >/dev/null 2>&1; then
        echo "erlang: OTP $(erl -noshell -eval \
            'io:format("~s", [erlang:system_info(otp_release)]), halt().')"
    else
        echo "erlang: not on PATH"
    fi
}

build() {
    gen=
    command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
    # -g only adds symbols for the profilers; the code is the Release code.
    # shellcheck disable=SC2086
    cmake -S "$root" -B "$build" $gen -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS=-g -DAEMP_BUILD_TESTS=OFF -DAEMP_BUILD_EXAMPLES=OFF \
        >/dev/null
    # only the benchmarks (and the library they link), nothing else
    targets=
    for f in "$root"/bench/bench_*.c; do
        targets="$targets $(basename "$f" .c)"
    done
    # bench_net's peers (net_zmq only exists when libzmq was found)
    targets="$targets net_aemp net_raw"
    pkg-config --exists libzmq 2>/dev/null && targets="$targets net_zmq"
    # shellcheck disable=SC2086
    cmake --build "$build" --target $targets
}

# callgrind_top NAME FUNCTION OPS ARGS...: instructions per op counted
# inside FUNCTION (on_idle, the dispatch loop: every send and delivery of
# the kernel benchmarks happens inside it; op_both, one encode+decode), and
# the top functions by their own (exclusive) cost per op.
callgrind_top() {
    name=$1 fn=$2 ops=$3
    shift 3
    out=$build/callgrind.$name
    valgrind --tool=callgrind --toggle-collect="$fn" \
        --callgrind-out-file="$out" "$build/bench/bench_local" "$@" \
        >/dev/null 2>&1
    callgrind_annotate "$out" 2>/dev/null | awk -v ops="$ops" -v name="$name" '
        /PROGRAM TOTALS/ { gsub(",", "", $1)
            printf "%s: %.0f instructions per op (%d ops)\n", name, $1 / ops, ops }
        /file:function/ { top = 1; next }
        top && NF >= 3 && n < 8 { c = $1; gsub(",", "", c); l = $0; n++
            sub(/^ *[0-9,]+ +/, "", l)
            # keep file:function and the object, without their directories
            gsub(/\.\/[a-z]*\/\.\.\/sysdeps\/x86_64\/(multiarch\/)?/, "", l)
            gsub(/\[[^]]*\//, "[", l)
            printf "  %6.1f  %s\n", c / ops, l }'
}

perf_top() {
    name=$1
    shift
    if ! perf record -q -e cpu-clock -o "$build/perf.$name" \
            "$build/bench/bench_local" "$@" >/dev/null 2>&1; then
        echo "perf record not available"
        return
    fi
    echo "$name: share of time (perf, cpu-clock samples):"
    perf report -i "$build/perf.$name" --stdio --no-children 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -n 12
}

profile() {
    echo
    echo "== profile (Release code with symbols)"
    if command -v valgrind >/dev/null 2>&1; then
        # scale 0.05: 200,000 flood messages, 100,000 ping-pong messages,
        # 50,000 ports, 100,000 codec iterations (bench_local's counts
        # times the scale)
        cg() { callgrind_top "$@" --runs 1 --scale 0.05; }
        cg flood on_idle 200000 --only flood
        cg shared on_idle 200000 --only shared
        cg pingpong on_idle 100000 --only pingpong
        cg churn on_idle 50000 --only churn
        cg cbor-enc+dec op_both 100000 --only cbor
        cg json-enc+dec op_both 100000 --only json
    else
        echo "valgrind not installed: no instruction counts"
    fi
    if command -v perf >/dev/null 2>&1; then
        perf_top flood --only flood --runs 1
        perf_top churn --only churn --runs 1
        perf_top cbor --only cbor --runs 1
    fi
}

# The receiver of one unpaced CBOR flood (bench_net's issue-7 figure) under
# perf: where a flooded receiver's time goes, kernel included (page faults
# of a growing heap show there).
profile_flood() {
    echo
    echo "== profile of the receiver under an unpaced flood (5 s, CBOR)"
    if ! command -v perf >/dev/null 2>&1; then
        echo "perf not installed"
        return
    fi
    out=$build/perf.flood-recv
    rm -f "$out"
    # shellcheck disable=SC2086
    "$build/bench/bench_net" --only unpaced --runs 1 --flood-seconds 5 \
        --flood-framings cbor $net_opts \
        --receiver-wrap "perf record -q -e cpu-clock -o $out --" |
        grep -E '^  run|delivered per' || true
    if [ ! -s "$out" ]; then
        echo "perf record not available"
        return
    fi
    echo "receiver, share of time (perf, cpu-clock samples, kernel included):"
    perf report -i "$out" --stdio --no-children 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -n 20
    echo "receiver, share of time by object:"
    perf report -i "$out" --stdio --no-children --sort dso 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -n 5
}

machine
build
if [ "$only" != net ] && [ "$only" != unpaced ]; then
    echo
    echo "== bench_local"
    "$build/bench/bench_local" "$@"
    [ "$profile" = 1 ] && profile
fi
if [ "$only" != local ]; then
    echo
    echo "== bench_net"
    unpaced=
    [ "$only" = unpaced ] && unpaced="--only unpaced"
    # shellcheck disable=SC2086
    "$build/bench/bench_net" $unpaced $net_opts
    [ "$profile" = 1 ] && profile_flood
fi
exit 0
