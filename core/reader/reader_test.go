package reader

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/vector"
)

const testDim = 8

func batch(t *testing.T, start, n int, r *rand.Rand) (arrow.RecordBatch, []float32) {
	t.Helper()
	s := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "v", Type: arrow.FixedSizeListOf(testDim, arrow.PrimitiveTypes.Float32)},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, s)
	defer b.Release()
	vals := make([]float32, n*testDim)
	for i := range vals {
		vals[i] = float32(r.NormFloat64())
	}
	for i := 0; i < n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(start + i))
		lb := b.Field(1).(*array.FixedSizeListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(vals[i*testDim:(i+1)*testDim], nil)
	}
	return b.NewRecordBatch(), vals
}

// Three buckets of three fragments each: scan, count and search agree with
// a brute force over the same rows, in parallel (run under -race).
func TestViewScanCountSearch(t *testing.T) {
	root := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	type row struct {
		bucket int
		id     int64
		v      []float32
	}
	var all []row
	id := 0
	for b := 0; b < 3; b++ {
		path := filepath.Join(root, "bucket_"+string(rune('0'+b)), DatasetName)
		for f := 0; f < 3; f++ {
			rec, vals := batch(t, id, 500, r)
			if _, err := lance.Append(path, rec, nil, lance.Options{}); err != nil {
				t.Fatal(err)
			}
			rec.Release()
			for i := 0; i < 500; i++ {
				all = append(all, row{b, int64(id + i), vals[i*testDim : (i+1)*testDim]})
			}
			id += 500
		}
	}
	rd, err := Open(root, lance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := rd.View()
	if n, err := v.Count(""); err != nil || n != int64(len(all)) {
		t.Fatalf("count %d %v", n, err)
	}
	if n, err := v.Count("id < 100 OR id >= 4400"); err != nil || n != 200 {
		t.Fatalf("filtered count %d %v", n, err)
	}
	sc, err := v.Scan(ScanOptions{Columns: []string{"id"}, Filter: "id >= 10", WithRowID: true, ChunkRows: 128})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for sc.Next() {
		rec := sc.RecordBatch()
		ids = append(ids, rec.Column(0).(*array.Int64).Int64Values()...)
		if rec.NumCols() != 3 {
			t.Fatalf("scan columns: %v", rec.Schema())
		}
	}
	if sc.Err() != nil || len(ids) != len(all)-10 || !slices.IsSorted(ids) {
		t.Fatalf("scan: %d ids, err %v", len(ids), sc.Err())
	}
	sc.Release()
	q := make([]float32, testDim)
	for i := range q {
		q[i] = float32(r.NormFloat64())
	}
	rec, err := v.Search(SearchOptions{Column: "v", Query: q, K: 25, Filter: "id >= 1000", Columns: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var want []row
	for _, x := range all {
		if x.id >= 1000 {
			want = append(want, x)
		}
	}
	sort.SliceStable(want, func(i, j int) bool {
		return vector.L2F32(want[i].v, q) < vector.L2F32(want[j].v, q)
	})
	got := rec.Column(0).(*array.Int64).Int64Values()
	for i := range got {
		if got[i] != want[i].id {
			t.Fatalf("hit %d: id %d, want %d", i, got[i], want[i].id)
		}
	}
	if _, err := v.Search(SearchOptions{Column: "v", Query: q[:3], K: 1}); err == nil {
		t.Fatal("wrong dimension accepted")
	}
}
