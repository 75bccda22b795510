// Reference MD6 digests for test_md6, from an implementation independent
// of ours: the npm package node-md6 (installed by md6_reference.sh).
// Usage: node md6_reference.js NODE_MD6_DIR OUTFILE
//
// Each line of OUTFILE is "d key len digest": d in bits, the key in hex
// ("-": none), the length of the input and its digest in hex.  Input n is
// n bytes of xorshift32 output, seeded from n; test_md6.c makes the same.
'use strict';
const fs = require('fs');
const path = require('path');

const [dir, outfile] = process.argv.slice(2);
if (!dir || !outfile) {
    console.error('usage: node md6_reference.js NODE_MD6_DIR OUTFILE');
    process.exit(2);
}
const md6 = require(path.resolve(dir));

// Must match md6_input() in test_md6.c.
function input(n) {
    let s = (0x6d643621 ^ Math.imul(n + 1, 0x9e3779b9)) >>> 0;
    if (s === 0)
        s = 1;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
        s = (s ^ (s << 13)) >>> 0;
        s = (s ^ (s >>> 17)) >>> 0;
        s = (s ^ (s << 5)) >>> 0;
        out[i] = s >>> 24;
    }
    return out;
}

// node-md6 takes a JavaScript string and UTF-8-encodes it itself, so not
// every byte string can be given as one.  Its encoder passes a code unit
// of at most 0x7f through as one byte, and its word packing masks each
// byte with 0xff: a string-like object whose charCodeAt gives b - 256 for
// a byte b >= 0x80 therefore hands it exactly the bytes we mean.  The
// self-checks below prove that on this version before it is relied on.
function asText(bytes) {
    return {
        length: bytes.length,
        charCodeAt: (i) => (bytes[i] < 0x80 ? bytes[i] : bytes[i] - 0x100),
    };
}

function hash(bytes, d, key) {
    return md6.getHashOfText(asText(bytes), d, key ? asText(key) : '', 64);
}

function fail(msg) {
    console.error('md6_reference: node-md6 ' + msg);
    process.exit(1);
}

// Known answers (docs: interop/README.md; "", "abc": published examples).
const enc = (s) => new TextEncoder().encode(s);
const known = [
    ['a', 256, '2b0a697a081c21269514640aab4d74ffafeb3c0212df68ce92922087c69b0a77'],
    ['md6 FTW', 256, '7bfaa624f661a683be2a3b2007493006a30a7845ee1670e499927861a8e74cce'],
    ['md6', 128, '98b4a2b7363159f810a60432df277b7c'],
    ['x'.repeat(513), 256, '41e84c7ed3119557a52c7c1c7b46c8e8a9598559e633f46fffd995ad3a557721'],
    ['x'.repeat(2048), 256, '565d6434abfafedf7848440c543ea08cb1c71fe71b76673709d5a6b31ec06f67'],
    ['x'.repeat(16391), 256, '5c0fe795e42aca9708960678105cd0c48a6a6cf477ecefe7d40de870499a6f8a'],
    ['', 256, 'bca38b24a804aa37d821d31af00f5598230122c5bbfc4c4ad5ed40e4258f04ca'],
    ['abc', 256, '230637d4e6845cf0d092b558e87625f03881dd53a7439da34cf3b94ed0d8b2c5'],
];
for (const [text, d, want] of known) {
    if (md6.getHashOfText(text, d) !== want)
        fail(`gives a wrong MD6-${d} for a known answer ("${text.slice(0, 10)}")`);
    if (hash(enc(text), d) !== want)
        fail('takes bytes differently from a string of ASCII');
}
// Non-ASCII (BMP only: node-md6 encodes surrogates one by one)
const accents = 'h\u00e9 \u20ac\u00ff';
if (hash(enc(accents), 256) !== md6.getHashOfText(accents, 256))
    fail('takes bytes >= 0x80 differently from its own UTF-8');

const hex = (b) => Buffer.from(b).toString('hex');
const lines = [];
function add(d, key, n) {
    lines.push(`${d} ${key ? hex(key) : '-'} ${n} ${hash(input(n), d, key)}`);
}

// Every length up to four blocks and a bit, MD6-256 as the tokens use it.
for (let n = 0; n <= 2100; n++)
    add(256, null, n);
// Deeper trees (up to 6 levels).
for (const n of [8197, 65537, 262147])
    add(256, null, n);
// Other digest lengths and keys.  Only whole bytes: node-md6 takes
// r = 40 + d/4 without rounding and keeps the first bits of the last
// byte, where the spec says floor(d/4) and the last d bits.
const keys = [null, enc('abc'), enc('K'.repeat(63) + '!')];
for (const d of [8, 64, 128, 160, 224, 256, 384, 512])
    for (const key of keys)
        for (const n of [0, 1, 3, 64, 511, 512, 513, 2048, 2049])
            add(d, key, n);

const tmp = outfile + '.tmp';
fs.writeFileSync(tmp, lines.join('\n') + '\n');
fs.renameSync(tmp, outfile);
