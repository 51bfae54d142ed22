package lance_test

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/persisting/persisting/core/lance"
)

func TestScratchMutate(t *testing.T) {
	if os.Getenv("SCRATCH_MUT") == "" {
		t.Skip()
	}
	paths, _ := filepath.Glob("testdata/pylance/*/_versions/*.manifest")
	var seeds [][]byte
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		seeds = append(seeds, b)
	}
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 200000; i++ {
		b := append([]byte(nil), seeds[rnd.Intn(len(seeds))]...)
		for k := 0; k < 1+rnd.Intn(4); k++ {
			b[rnd.Intn(len(b))] = byte(rnd.Intn(256))
		}
		done := make(chan bool)
		go func() { lance.ParseManifest(b); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			os.WriteFile("/tmp/exp/hang.bin", b, 0o644)
			panic("hang")
		}
	}
}
