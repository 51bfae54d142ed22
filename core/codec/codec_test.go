package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

func allCodecs(t testing.TB) []Codec {
	t.Helper()
	var out []Codec
	for _, n := range Names() {
		c, err := ByName(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// jsonLike returns n bytes of JSON lines: repeated keys, short strings and
// numbers, roughly what a queue of Pulsing records serializes to.
func jsonLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	words := []string{"alpha", "beta", "gamma", "delta", "order", "created",
		"user", "status", "pending", "shipped", "eu-west-1", "us-east-2", "ok"}
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"ts":%d,"user":"%s-%d","status":"%s","price":%.2f,"qty":%d,"region":"%s","tags":["%s","%s"],"vec":[%.4f,%.4f,%.4f]}`+"\n",
			1_000_000+i, 1_767_225_600_000_000+int64(i)*1375+r.Int64N(1000),
			words[r.IntN(len(words))], r.IntN(5000), words[r.IntN(len(words))],
			r.Float64()*1000, r.IntN(50), words[r.IntN(len(words))],
			words[r.IntN(len(words))], words[r.IntN(len(words))],
			r.NormFloat64(), r.NormFloat64(), r.NormFloat64())
	}
	return b.Bytes()[:n]
}

// columns returns n bytes shaped like Arrow buffers: little-endian int64
// timestamps with small deltas, int64 ids and float64 measurements.
func columns(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	b := make([]byte, 0, n+24)
	ts := int64(1_767_225_600_000_000)
	for len(b) < n {
		ts += 1000 + r.Int64N(50)
		b = binary.LittleEndian.AppendUint64(b, uint64(ts))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.IntN(10_000)))
		b = binary.LittleEndian.AppendUint64(b, uint64(int64(r.NormFloat64()*100)))
	}
	return b[:n]
}

func TestByName(t *testing.T) {
	for name, want := range map[string]string{
		"": "none", "none": "none", "zstd": "zstd", "lz4": "lz4",
		"snappy": "snappy", " ZSTD ": "zstd", "LZ4": "lz4",
	} {
		c, err := ByName(name)
		if err != nil {
			t.Fatalf("ByName(%q): %v", name, err)
		}
		if c.Name() != want {
			t.Fatalf("ByName(%q).Name() = %q, want %q", name, c.Name(), want)
		}
	}
	_, err := ByName("gzip")
	if !errors.Is(err, ErrUnknownCodec) {
		t.Fatalf("ByName(gzip) error = %v, want ErrUnknownCodec", err)
	}
	for _, n := range Names() {
		if !strings.Contains(err.Error(), `"`+n+`"`) {
			t.Errorf("error %q does not list %q", err, n)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	zeros := make([]byte, 1<<20)
	inputs := map[string][]byte{
		"nil":           nil,
		"empty":         {},
		"one":           {42},
		"small":         []byte("hello, persisting"),
		"json-1MiB":     jsonLike(1<<20, 1),
		"columns-1MiB":  columns(1<<20, 2),
		"zeros-1MiB":    zeros,
		"random-64KiB":  randomBytes(64<<10, 3),
		"random-1MiB":   randomBytes(1<<20, 4),
		"json-small":    jsonLike(300, 5),
		"random-small":  randomBytes(100, 6),
		"zeros-17MiB":   make([]byte, 17<<20), // highest ratio: checks the plausibility bounds
		"repeat-4KiB-x": bytes.Repeat([]byte("abcdefgh"), 512),
	}
	for _, c := range allCodecs(t) {
		for name, in := range inputs {
			t.Run(c.Name()+"/"+name, func(t *testing.T) {
				enc, err := c.Encode(nil, in)
				if err != nil {
					t.Fatal(err)
				}
				if len(enc) > len(in)+MaxHeaderLen {
					t.Fatalf("encoded %d bytes to %d: more than the header of overhead", len(in), len(enc))
				}
				codecName, n, h, err := Inspect(enc)
				if err != nil {
					t.Fatal(err)
				}
				if n != len(in) || h < 2 || h > MaxHeaderLen {
					t.Fatalf("Inspect = (%s, %d, %d), want length %d", codecName, n, h, len(in))
				}
				if codecName != c.Name() && codecName != "none" {
					t.Fatalf("frame codec %q from codec %q", codecName, c.Name())
				}
				if c.Name() != "none" && strings.HasPrefix(name, "zeros") && codecName != c.Name() {
					t.Fatalf("zeros were stored uncompressed")
				}
				dec, err := Decode(enc)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(dec, in) {
					t.Fatalf("round trip mismatch: %d bytes in, %d out", len(in), len(dec))
				}
				if dec == nil {
					t.Fatal("Decode returned nil for a valid frame")
				}
				// Decode through the codec interface, appending to a prefix.
				prefix := []byte("prefix")
				dec2, err := c.Decode(append([]byte(nil), prefix...), enc)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(dec2[:len(prefix)], prefix) || !bytes.Equal(dec2[len(prefix):], in) {
					t.Fatal("appending Decode mismatch")
				}
				// Encode appends too.
				enc2, err := c.Encode(append([]byte(nil), prefix...), in)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc2[:len(prefix)], prefix) {
					t.Fatal("Encode clobbered dst")
				}
				if dec3, err := Decode(enc2[len(prefix):]); err != nil || !bytes.Equal(dec3, in) {
					t.Fatalf("appending Encode: %v", err)
				}
			})
		}
	}
}

func TestCompresses(t *testing.T) {
	in := jsonLike(256<<10, 9)
	for _, c := range allCodecs(t) {
		enc, err := c.Encode(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		ratio := float64(len(in)) / float64(len(enc))
		t.Logf("%-6s json 256 KiB → %d bytes, ratio %.2f", c.Name(), len(enc), ratio)
		if c.Name() != "none" && ratio < 2 {
			t.Errorf("%s compresses JSON only %.2fx", c.Name(), ratio)
		}
	}
}

func TestCrossCodecDecode(t *testing.T) {
	in := jsonLike(100<<10, 3)
	for _, w := range allCodecs(t) {
		enc, err := w.Encode(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range allCodecs(t) {
			out, err := r.Decode(nil, enc)
			if err != nil {
				t.Fatalf("written with %s, decoded with %s: %v", w.Name(), r.Name(), err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("written with %s, decoded with %s: mismatch", w.Name(), r.Name())
			}
		}
	}
}

func TestTooLarge(t *testing.T) {
	// The length is checked before any byte is read, so the pages of this
	// allocation are never touched.
	if testing.Short() {
		t.Skip("reserves 1 GiB of address space")
	}
	big := make([]byte, MaxDecodedLen+1)
	if _, err := Zstd.Encode(nil, big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func frameHeader(id byte, n uint64) []byte {
	return binary.AppendUvarint([]byte{id}, n)
}

func TestCorrupt(t *testing.T) {
	in := jsonLike(64<<10, 4)
	valid := map[string][]byte{}
	for _, c := range allCodecs(t) {
		enc, err := c.Encode(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		valid[c.Name()] = enc
	}
	cases := map[string][]byte{
		"nil":              nil,
		"empty":            {},
		"id-zero":          {0x00, 0x00},
		"id-ff":            {0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0},
		"id-unknown":       {0x05, 0x01, 'x'},
		"no-length":        {idZstd},
		"bad-varint":       {idNone, 0x80, 0x80, 0x80},
		"varint-overflow":  append([]byte{idLZ4}, bytes.Repeat([]byte{0xff}, 10)...),
		"over-limit":       append(frameHeader(idZstd, MaxDecodedLen+1), make([]byte, 1<<16)...),
		"huge-claim-zstd":  append(frameHeader(idZstd, 1<<29), 1, 2, 3),
		"huge-claim-lz4":   append(frameHeader(idLZ4, 1<<20), 0x10, 'a'),
		"huge-claim-snapp": append(frameHeader(idSnappy, 1<<20), 0x80, 0x80, 0x40, 0, 'a'),
		"none-short":       append(frameHeader(idNone, 10), "abc"...),
		"none-long":        append(frameHeader(idNone, 1), "abc"...),
		"zstd-zero-len":    append(frameHeader(idZstd, 0), 1, 2),
		"zstd-garbage":     append(frameHeader(idZstd, 100), bytes.Repeat([]byte{0xAB}, 50)...),
		"lz4-garbage":      append(frameHeader(idLZ4, 100), bytes.Repeat([]byte{0xF0}, 50)...),
		"snappy-garbage":   append(frameHeader(idSnappy, 100), bytes.Repeat([]byte{0xFE}, 50)...),
	}
	for name, enc := range valid {
		if name == "none" {
			continue
		}
		h := len(frameHeader(enc[0], uint64(len(in))))
		truncated := append([]byte(nil), enc[:len(enc)-len(enc)/3]...)
		cases[name+"-truncated"] = truncated
		flipped := append([]byte(nil), enc...)
		flipped[h+len(enc[h:])/2] ^= 0x5a
		cases[name+"-flipped"] = flipped
		wrongLen := append(frameHeader(enc[0], uint64(len(in)-1)), enc[h:]...)
		cases[name+"-wrong-length"] = wrongLen
		longer := append(frameHeader(enc[0], uint64(len(in)+1)), enc[h:]...)
		cases[name+"-longer-length"] = longer
		trailing := append(append([]byte(nil), enc...), 0, 1, 2, 3)
		cases[name+"-trailing"] = trailing
		// The body of one codec under the id of another.
		for _, other := range []byte{idZstd, idLZ4, idSnappy} {
			if other != enc[0] {
				cases[fmt.Sprintf("%s-as-%d", name, other)] = append(frameHeader(other, uint64(len(in))), enc[h:]...)
			}
		}
	}
	for name, enc := range cases {
		t.Run(name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := None.Decode(dst, enc)
			if err == nil {
				// A flipped byte may land in a literal run and decode to
				// other bytes of the right length; the WAL CRC catches
				// that. Anything else must fail.
				if strings.HasSuffix(name, "-flipped") && name != "zstd-flipped" && len(out) == len(dst)+len(in) {
					return
				}
				t.Fatalf("decoded corrupt frame %x… to %d bytes without error", enc[:min(len(enc), 16)], len(out))
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst after error = %q, want it unchanged", out)
			}
			if _, _, _, ierr := Inspect(enc); ierr != nil && !errors.Is(ierr, ErrCorrupt) {
				t.Fatalf("Inspect error %v does not wrap ErrCorrupt", ierr)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				for _, c := range allCodecs(t) {
					in := jsonLike(1000+i*997, uint64(g*100+i))
					enc, err := c.Encode(nil, in)
					if err != nil {
						t.Error(err)
						return
					}
					out, err := Decode(enc)
					if err != nil || !bytes.Equal(out, in) {
						t.Errorf("%s: concurrent round trip failed: %v", c.Name(), err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
