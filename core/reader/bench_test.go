package reader

import (
	"math/rand/v2"
	"os"
	"testing"

	lance "github.com/persisting/persisting/core/lance/table"
)

// BenchmarkSearch searches the dataset at $PERSISTING_BENCH_DATASET (a
// 128-dim "v" column, as bench/bench_search.py builds); skipped without it.
func BenchmarkSearch(b *testing.B) {
	path := os.Getenv("PERSISTING_BENCH_DATASET")
	if path == "" {
		b.Skip("set PERSISTING_BENCH_DATASET to a dataset built by bench/bench_search.py")
	}
	r, err := Open(path, lance.Options{})
	if err != nil {
		b.Fatal(err)
	}
	q := make([]float32, 128)
	for i := range q {
		q[i] = float32(rand.NormFloat64())
	}
	for b.Loop() {
		rec, err := r.View().Search(SearchOptions{Column: "v", Query: q, K: 10, Columns: []string{"id"}})
		if err != nil {
			b.Fatal(err)
		}
		rec.Release()
	}
}
