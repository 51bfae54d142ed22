package codec

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateCorpus = flag.Bool("update-fuzz-corpus", false,
	"rewrite the seed corpus under testdata/fuzz/FuzzDecode")

// fuzzSeeds are valid frames of every codec plus hand-made corrupt ones.
func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"empty":           {},
		"id-only":         {idZstd},
		"bad-id":          {0x07, 0x03, 'a', 'b', 'c'},
		"arrow-ipc-start": {0xff, 0xff, 0xff, 0xff, 0x78, 0, 0, 0},
		"huge-claim":      append(frameHeader(idZstd, 1<<29), 0x28, 0xb5, 0x2f, 0xfd),
		"over-limit":      frameHeader(idSnappy, MaxDecodedLen+1),
	}
	inputs := map[string][]byte{
		"small": []byte("hello, persisting"),
		"json":  jsonLike(2000, 1),
		"cols":  columns(1536, 2),
		"zeros": make([]byte, 4096),
		"rand":  randomBytes(64, 3),
	}
	for _, c := range allCodecs(t) {
		for in, data := range inputs {
			enc, err := c.Encode(nil, data)
			if err != nil {
				t.Fatal(err)
			}
			seeds[c.Name()+"-"+in] = enc
		}
	}
	return seeds
}

func TestUpdateFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-fuzz-corpus to rewrite testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, every
// error must wrap ErrCorrupt, and whatever decodes must have the declared
// length and survive a round trip through every codec.
func FuzzDecode(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	codecs := allCodecs(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		name, n, _, ierr := Inspect(frame)
		out, err := Decode(frame)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if ierr != nil {
			t.Fatalf("Decode succeeded where Inspect failed: %v", ierr)
		}
		if len(out) != n {
			t.Fatalf("%s frame declares %d bytes, decoded %d", name, n, len(out))
		}
		if len(out) > 64<<10 {
			return // a valid high-ratio body; re-encoding it only slows the fuzzer
		}
		for _, c := range codecs {
			enc, err := c.Encode(nil, out)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(enc)
			if err != nil {
				t.Fatalf("%s re-encode: %v", c.Name(), err)
			}
			if !bytes.Equal(back, out) {
				t.Fatalf("%s re-encode mismatch", c.Name())
			}
		}
	})
}

// FuzzRoundTrip checks Decode(Encode(x)) == x for arbitrary x and codec.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint8(1))
	f.Add(jsonLike(500, 1), uint8(2))
	f.Add(make([]byte, 300), uint8(3))
	codecs := allCodecs(f)
	f.Fuzz(func(t *testing.T, in []byte, which uint8) {
		c := codecs[int(which)%len(codecs)]
		enc, err := c.Encode([]byte{9}, in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Decode([]byte{7}, enc[1:])
		if err != nil {
			t.Fatal(err)
		}
		if out[0] != 7 || !bytes.Equal(out[1:], in) {
			t.Fatalf("%s round trip mismatch", c.Name())
		}
	})
}
