#!/bin/sh
# The tutorial's samples cannot rot: each docs/tutorial/*.c is built with the
# library (tests/CMakeLists.txt), and this test checks that
#  - docs/tutorial.md shows every sample exactly as the file is (the block
#    after "<!-- sample: NAME -->"), and that every sample is shown;
#  - the single-process samples print what the tutorial says they print
#    (the block after "<!-- output: NAME -->"), and the README's "A taste"
#    program (built from README.md itself) prints what README says;
#  - the two-process samples work as real processes: 02-nodes (a public
#    node and a private one greeting it), 04-spawn (a worker spawned on
#    another node, monitored, dying with a reason), and 05-client (the
#    configuration file of the `aemp` tool, its aemp::echo service).
# Usage: test_tutorial.sh <samples-dir> <aemp-tool> <source-dir>
set -eu
bin=$1
aemp=$2
src=$3
md=$src/docs/tutorial.md
tmp=$(mktemp -d /tmp/aemp-tutorial-XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "test_tutorial: $*" >&2; exit 1; }

# block KIND NAME FILE: the fenced block after "<!-- KIND: NAME -->"
block() {
    awk -v m="<!-- $1: $2 -->" '
        $0 == m { want = 1; next }
        want && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' "$3"
}

for f in "$src"/docs/tutorial/*.c; do
    name=$(basename "$f")
    block sample "$name" "$md" >"$tmp/shown"
    [ -s "$tmp/shown" ] || fail "docs/tutorial.md does not show $name"
    diff -u "$f" "$tmp/shown" >&2 ||
        fail "docs/tutorial.md shows $name differently from the file"
    test -x "$bin/${name%.c}" || fail "$name was not built"
done

# the single-process programs print what the text says
expect() { # expect NAME DOC-FILE OUTPUT-FILE
    block output "$1" "$2" >"$tmp/want"
    [ -s "$tmp/want" ] || fail "no output block for $1 in $2"
    diff -u "$tmp/want" "$3" >&2 || fail "$1 printed something else"
}
for s in 01-ports 03-monitor; do
    timeout 10 "$bin/$s" >"$tmp/$s.out" || fail "$s exited with $?"
    expect "$s.c" "$md" "$tmp/$s.out"
done
timeout 10 "$bin/readme_taste" >"$tmp/taste.out" || fail "taste exited $?"
expect taste.c "$src/README.md" "$tmp/taste.out"

# wait_line FILE PATTERN: until FILE has a line matching PATTERN (5 s)
wait_line() {
    for _ in $(seq 50); do
        grep -qs "$2" "$1" && return 0
        sleep 0.1
    done
    cat "$1" >&2
    fail "no line '$2' in $(basename "$1")"
}
# a port for this run, away from the usual 4040s
base=$(( 20000 + $$ % 20000 ))
export AEMP_SECRET=tutorial-secret-$$

# 2: a public node and a private node that greets it
ref=127.0.0.1:$base
"$bin/02-nodes" serve "$ref" >"$tmp/serve.out" 2>&1 &
pids="$pids $!"
wait_line "$tmp/serve.out" "^$ref#"
port=$(head -n1 "$tmp/serve.out")
timeout 10 "$bin/02-nodes" greet "$port" >"$tmp/greet.out" 2>&1 ||
    { cat "$tmp/greet.out" >&2; fail "02-nodes greet failed"; }
grep -qx "alice was welcomed by $ref" "$tmp/greet.out" ||
    { cat "$tmp/greet.out" >&2; fail "02-nodes greet: no welcome"; }
wait_line "$tmp/serve.out" "^hello from alice on anon/"

# 4: a worker spawned on another node, monitored, dying with a reason
ref=127.0.0.1:$(( base + 1 ))
"$bin/04-spawn" node "$ref" >"$tmp/node.out" 2>&1 &
pids="$pids $!"
wait_line "$tmp/node.out" "^node $ref offers tut::square"
timeout 10 "$bin/04-spawn" boss "$ref" >"$tmp/boss.out" 2>&1 ||
    { cat "$tmp/boss.out" >&2; fail "04-spawn boss failed"; }
block output 04-spawn.c "$md" | sed "s/127\.0\.0\.1:4052/$ref/" >"$tmp/want"
diff -u "$tmp/want" "$tmp/boss.out" >&2 || fail "04-spawn boss printed else"
wait_line "$tmp/node.out" "^worker $ref#.* started for anon/"

# 6: a directory (global node), a worker in a group, a client finding it
dir=127.0.0.1:$(( base + 3 ))
"$bin/06-registry" directory "$dir" >"$tmp/dir.out" 2>&1 &
pids="$pids $!"
wait_line "$tmp/dir.out" "^directory $dir is global"
"$bin/06-registry" worker "127.0.0.1:$(( base + 4 ))" "$dir" \
    >"$tmp/worker.out" 2>&1 &
pids="$pids $!"
wait_line "$tmp/worker.out" "^worker 127.0.0.1:$(( base + 4 ))#.* registered"
timeout 10 "$bin/06-registry" client "$dir" >"$tmp/reg.out" 2>&1 ||
    { cat "$tmp/reg.out" >&2; fail "06-registry client failed"; }
expect 06-registry.c "$md" "$tmp/reg.out"

# 5: the tool's configuration file and its aemp::echo service
unset AEMP_SECRET
export AEMP_CONFIG="$tmp/config.json"
ref=127.0.0.1:$(( base + 2 ))
"$aemp" gensecret >/dev/null
"$aemp" setservices aemp::echo >/dev/null
"$aemp" -v run "$ref" >"$tmp/run.out" 2>&1 &
pids="$pids $!"
wait_line "$tmp/run.out" "^service aemp::echo "
echo_port=$(awk '$2 == "aemp::echo" { print $3; exit }' "$tmp/run.out")
timeout 10 "$bin/05-client" "$echo_port" hello >"$tmp/client.out" 2>&1 ||
    { cat "$tmp/client.out" >&2; fail "05-client failed"; }
grep -qx 'reply: \["hello"\]' "$tmp/client.out" ||
    { cat "$tmp/client.out" >&2; fail "05-client: no echo"; }
# without the file's secret the client cannot authenticate: it says so
AEMP_CONFIG=$tmp/none.json timeout 10 "$bin/05-client" "$echo_port" x \
    >"$tmp/nosecret.out" 2>&1 && fail "05-client ran without a secret"
echo "test_tutorial: $(ls "$src"/docs/tutorial/*.c | wc -l) samples shown," \
    "built and run; README's taste ran"
