package reader

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/store"
	"github.com/persisting/persisting/core/store/s3test"
)

// scanAll is every row of the view as (bucket, row id, id), in scan order.
func scanAll(t *testing.T, v *View) [][3]int64 {
	t.Helper()
	sc, err := v.Scan(ScanOptions{Columns: []string{"id"}, WithRowID: true, ChunkRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Release()
	var out [][3]int64
	for sc.Next() {
		rec := sc.RecordBatch()
		ids := rec.Column(0).(*array.Int64).Int64Values()
		rows := rec.Column(1).(*array.Uint64).Uint64Values()
		var buckets []int32
		if rec.NumCols() > 2 {
			buckets = rec.Column(2).(*array.Int32).Int32Values()
		}
		for i := range ids {
			b := int64(-1)
			if buckets != nil {
				b = int64(buckets[i])
			}
			out = append(out, [3]int64{b, int64(rows[i]), ids[i]})
		}
	}
	if sc.Err() != nil {
		t.Fatal(sc.Err())
	}
	return out
}

func hitIDs(t *testing.T, v *View, q []float32) []int64 {
	t.Helper()
	rec, err := v.Search(SearchOptions{Column: "v", Query: q, K: 20, Metric: "cosine", Filter: "id >= 100", Columns: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	return append([]int64(nil), rec.Column(0).(*array.Int64).Int64Values()...)
}

// The same buckets written locally and on the S3 test server read the same
// through a storage path, a bucket and a data.lance URI: counts, scans (row
// ids included), searches, versions, checkouts; Refresh sees a new commit
// and a new bucket.
func TestOpenOnObjectStore(t *testing.T) {
	srv := s3test.Start(t)
	res, err := store.NewResolver(nil, srv.StorageOptions())
	if err != nil {
		t.Fatal(err)
	}
	remoteOpts := lance.Options{Store: res.For}
	local, remote := t.TempDir(), srv.URI("orders")
	r := rand.New(rand.NewPCG(3, 4))
	appendBoth := func(bucket, start, n int) {
		rec, _ := batch(t, start, n, r)
		defer rec.Release()
		name := "bucket_" + strconv.Itoa(bucket)
		if _, err := lance.Append(filepath.Join(local, name, DatasetName), rec, nil, lance.Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := lance.Append(remote+"/"+name+"/"+DatasetName, rec, nil, remoteOpts); err != nil {
			t.Fatal(err)
		}
	}
	for b := 0; b < 2; b++ {
		appendBoth(b, b*1000, 300)
		appendBoth(b, b*1000+300, 200)
	}
	q := []float32{1, -1, 0.5, 0, 2, 0, -0.5, 1}
	same := func(lr, rr *Reader) {
		t.Helper()
		lv, rv := lr.View(), rr.View()
		for _, expr := range []string{"", "id < 50 OR id >= 1450"} {
			ln, err1 := lv.Count(expr)
			rn, err2 := rv.Count(expr)
			if err1 != nil || err2 != nil || ln != rn || ln == 0 {
				t.Fatalf("count %q: local %d %v, remote %d %v", expr, ln, err1, rn, err2)
			}
		}
		if l, r := scanAll(t, lv), scanAll(t, rv); len(l) != len(r) || len(l) == 0 {
			t.Fatalf("scan: local %d rows, remote %d", len(l), len(r))
		} else {
			for i := range l {
				if l[i] != r[i] {
					t.Fatalf("scan row %d: local %v, remote %v", i, l[i], r[i])
				}
			}
		}
		if l, r := hitIDs(t, lv, q), hitIDs(t, rv, q); len(l) != 20 || !slices.Equal(l, r) {
			t.Fatalf("search: local %v, remote %v", l, r)
		}
		lvs, err1 := lr.Versions()
		rvs, err2 := rr.Versions()
		if err1 != nil || err2 != nil || len(lvs) != len(rvs) {
			t.Fatalf("versions: %v %v %v %v", lvs, err1, rvs, err2)
		}
		for i := range lvs {
			if lvs[i].Bucket != rvs[i].Bucket || lvs[i].Version != rvs[i].Version || lvs[i].Rows != rvs[i].Rows {
				t.Fatalf("version %d: local %+v, remote %+v", i, lvs[i], rvs[i])
			}
		}
	}
	for _, sub := range []string{"", "/bucket_1", "/bucket_0/" + DatasetName} {
		lr, err := Open(local+sub, lance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rr, err := Open(remote+sub, remoteOpts)
		if err != nil {
			t.Fatal(sub, err)
		}
		same(lr, rr)
	}
	lr, _ := Open(local, lance.Options{})
	rr, _ := Open(remote, remoteOpts)
	for _, x := range []*Reader{lr, rr} {
		if err := x.Checkout(map[int]uint64{0: 1, 1: 2}); err != nil {
			t.Fatal(err)
		}
	}
	same(lr, rr)
	if err := rr.Checkout(map[int]uint64{0: 7}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("missing version: %v", err)
	}
	appendBoth(0, 600, 50)
	appendBoth(4, 4000, 10)
	if n, _ := rr.View().Count(""); n != 800 {
		t.Fatalf("before refresh: %d rows", n)
	}
	for _, x := range []*Reader{lr, rr} {
		if err := x.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := rr.View().Count(""); n != 1060 {
		t.Fatalf("after refresh: %d rows", n)
	}
	same(lr, rr)

	if _, err := Open(srv.URI("missing"), remoteOpts); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing prefix: %v", err)
	}
	if _, err := Open(remote, lance.Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a URI without a store: %v", err)
	}
}
