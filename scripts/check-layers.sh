#!/bin/sh
# The layers of src/, lowest first: a file may include headers of its own
# layer and of the layers below it, never of a layer above — in particular
# nothing in the kernel (base, value, codec, kernel) includes a network or
# initialisation header.  The build enforces it too (the kernel's objects
# are compiled without the upper layers' include directories); this check
# says which file and which header.  Run by scripts/test.sh (so by CI).
set -eu
cd "$(dirname "$0")/../src"
layers="base value codec kernel net global init"
status=0
above=$layers
for layer in $layers; do
    above=${above#"$layer"}
    above=${above# }
    for upper in $above; do
        for h in "$upper"/*.h; do
            [ -e "$h" ] || continue
            name=$(basename "$h")
            if hits=$(grep -ln "#include \"$name\"" "$layer"/*.c "$layer"/*.h 2>/dev/null); then
                for f in $hits; do
                    echo "layering: src/$f ($layer) includes $name ($upper)" >&2
                done
                status=1
            fi
        done
    done
done
[ $status -eq 0 ] && echo "layering: ok ($layers)"
exit $status
