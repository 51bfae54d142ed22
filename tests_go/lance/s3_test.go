package lance_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"

	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/store"
	"github.com/persisting/persisting/core/store/s3test"
)

// Datasets on an S3-compatible server (s3test), written through the S3
// store and read back by Go and by real Lance (pylance) with the same
// storage options.

// s3Opts is a writer of its own: its own client and connections, as a
// separate process would have.
func s3Opts(t *testing.T, srv *s3test.Server) lance.Options {
	t.Helper()
	r, err := store.NewResolver(nil, srv.StorageOptions())
	if err != nil {
		t.Fatal(err)
	}
	return lance.Options{Store: r.For}
}

func ids(t *testing.T, d *lance.Dataset) []int64 {
	t.Helper()
	var out []int64
	for _, row := range readRows(t, d, 0, d.CountRows()) {
		out = append(out, int64(row["id"].(float64)))
	}
	return out
}

// N committers append to one dataset at once: every version is won by
// exactly one commit (one fragment, one batch more than the version
// before), the losers rebase, nothing is lost or doubled; then compaction
// and cleanup run on the object store and pylance reads every version.
func TestS3ConcurrentCommitters(t *testing.T) {
	srv := s3test.Start(t)
	uri := srv.URI("tables/concurrent/data.lance")
	const writers, perWriter, rows = 4, 5, 20
	if _, err := lance.Append(uri, simpleRec(t, 0, rows), map[string]string{"persisting.wal_watermark": "0"}, s3Opts(t, srv)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		opts := s3Opts(t, srv)
		wg.Go(func() {
			for i := range perWriter {
				start := (1 + w*perWriter + i) * rows
				rec := simpleRec(t, start, rows)
				_, err := lance.Append(uri, rec, map[string]string{"writer" + strconv.Itoa(w): strconv.Itoa(i)}, opts)
				rec.Release()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a committer failed: %v", err)
	}
	opts := s3Opts(t, srv)
	versions, err := lance.ListVersions(uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	total := 1 + writers*perWriter
	if len(versions) != total {
		t.Fatalf("%d versions, want %d", len(versions), total)
	}
	for i, v := range versions {
		if v.Version != uint64(i+1) || v.Rows != int64((i+1)*rows) {
			t.Fatalf("version %d: %+v, want version %d with %d rows", i, v, i+1, (i+1)*rows)
		}
	}
	d, err := lance.Open(uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(t, d)
	slices.Sort(got)
	for i, id := range got {
		if id != int64(i) {
			t.Fatalf("after %d concurrent commits: id %d at %d (lost or doubled rows)", writers*perWriter, id, i)
		}
	}
	cfg := d.Config()
	for w := range writers {
		if cfg["writer"+strconv.Itoa(w)] != strconv.Itoa(perWriter-1) {
			t.Fatalf("config %v: writer %d's last update lost", cfg, w)
		}
	}
	before := ids(t, d)

	// Compaction (Lance's Rewrite: order and offsets kept) and cleanup
	// through the store.
	res, err := lance.Compact(context.Background(), uri, lance.CompactOptions{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dataset.Fragments() != 1 || !slices.Equal(ids(t, res.Dataset), before) {
		t.Fatalf("after compaction: %d fragments, rows changed: %v", res.Dataset.Fragments(), res.FragmentsRemoved)
	}
	st, err := lance.Cleanup(context.Background(), uri, lance.CleanupOptions{KeepLast: 3, DeleteUnverified: true}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Kept) != 3 || st.VersionsRemoved != total+1-3 || st.FilesRemoved <= st.VersionsRemoved {
		t.Fatalf("cleanup: %+v", st)
	}
	versions, err = lance.ListVersions(uri, opts)
	if err != nil || len(versions) != 3 {
		t.Fatalf("after cleanup: %v, %v", versions, err)
	}

	// Real Lance reads every kept version with the same storage options.
	py := pylancePython(t)
	so, _ := json.Marshal(srv.StorageOptions())
	out := pyJSON(t, py, `
import json, sys, lance
uri, so = sys.argv[1], json.loads(sys.argv[2])
ds = lance.dataset(uri, storage_options=so)
out = {"latest": ds.version, "versions": {}}
for v in ds.versions():
    d = lance.dataset(uri, version=v["version"], storage_options=so)
    t = d.to_table()
    out["versions"][str(v["version"])] = {"rows": d.count_rows(), "ids": t.column("id").to_pylist()}
print(json.dumps(out))
`, uri, string(so))
	if int(out["latest"].(float64)) != total+1 {
		t.Fatalf("pylance latest version %v, want %d", out["latest"], total+1)
	}
	vs := out["versions"].(map[string]any)
	if len(vs) != 3 {
		t.Fatalf("pylance sees versions %v", vs)
	}
	for _, v := range versions {
		pv := vs[strconv.FormatUint(v.Version, 10)].(map[string]any)
		if int64(pv["rows"].(float64)) != v.Rows {
			t.Fatalf("version %d: pylance counts %v rows, Go %d", v.Version, pv["rows"], v.Rows)
		}
		var pids []int64
		for _, x := range pv["ids"].([]any) {
			pids = append(pids, int64(x.(float64)))
		}
		dv, err := lance.OpenVersion(uri, v.Version, opts)
		if err != nil {
			t.Fatal(err)
		}
		if want := ids(t, dv); !slices.Equal(pids, want) {
			t.Fatalf("version %d: pylance reads ids %v, Go %v", v.Version, pids, want)
		}
	}
}

// UpdateConfig (the fence a new owner commits) is a version real Lance
// reads: same rows, the config changed, the transaction an update_config.
// An Append whose CheckCommit refuses the latest config commits nothing.
func TestS3UpdateConfigAndCheckCommit(t *testing.T) {
	srv := s3test.Start(t)
	uri := srv.URI("tables/fence/data.lance")
	opts := s3Opts(t, srv)
	if _, err := lance.Append(uri, simpleRec(t, 0, 10), map[string]string{"persisting.wal_watermark": "10"}, opts); err != nil {
		t.Fatal(err)
	}
	d, err := lance.UpdateConfig(uri, map[string]string{"persisting.epoch": "7"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version() != 2 || d.CountRows() != 10 || d.Config()["persisting.epoch"] != "7" || d.Config()["persisting.wal_watermark"] != "10" {
		t.Fatalf("after UpdateConfig: version %d, %d rows, config %v", d.Version(), d.CountRows(), d.Config())
	}
	fenced := opts
	fenced.CheckCommit = func(cfg map[string]string) error {
		if cfg["persisting.epoch"] != "" {
			return errors.New("fenced")
		}
		return nil
	}
	if _, err := lance.Append(uri, simpleRec(t, 10, 5), nil, fenced); err == nil || err.Error() != "fenced" {
		t.Fatalf("Append refused by CheckCommit: %v", err)
	}
	if vs, _ := lance.ListVersions(uri, opts); len(vs) != 2 {
		t.Fatalf("a refused Append committed: %v", vs)
	}
	py := pylancePython(t)
	so, _ := json.Marshal(srv.StorageOptions())
	out := pyJSON(t, py, `
import json, sys, lance
ds = lance.dataset(sys.argv[1], storage_options=json.loads(sys.argv[2]))
print(json.dumps({"version": ds.version, "rows": ds.count_rows(), "config": ds.config(),
                  "ids": ds.to_table().column("id").to_pylist()}))
`, uri, string(so))
	cfg := out["config"].(map[string]any)
	if out["version"].(float64) != 2 || out["rows"].(float64) != 10 || cfg["persisting.epoch"] != "7" || cfg["persisting.wal_watermark"] != "10" {
		t.Fatalf("pylance reads %v", out)
	}
}
