package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/persisting/persisting/core/store"
	"github.com/persisting/persisting/core/store/s3test"
)

// These tests run the S3 store against a real S3-compatible server
// (s3test: MinIO on loopback).

func list(t *testing.T, s store.Store, dir string) []string {
	t.Helper()
	names, err := s.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// The server itself enforces If-None-Match: * (a raw SDK put, not our
// store): the property every commit relies on.
func TestS3ServerEnforcesIfNoneMatch(t *testing.T) {
	srv := s3test.Start(t)
	c := srv.Client()
	put := func(body string) error {
		_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: &srv.Bucket, Key: aws.String("k"), Body: strings.NewReader(body), IfNoneMatch: aws.String("*"),
		}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		return err
	}
	if err := put("first"); err != nil {
		t.Fatal(err)
	}
	err := put("second")
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Fatalf("second conditional put: %v, want 412 Precondition Failed", err)
	}
}

func TestS3PutIfAbsentRefusesExisting(t *testing.T) {
	srv := s3test.Start(t)
	s := srv.Store("ds/data.lance")
	if err := s.PutIfAbsent("_versions/1.manifest", []byte("first")); err != nil {
		t.Fatal(err)
	}
	err := s.PutIfAbsent("_versions/1.manifest", []byte("second"))
	if !errors.Is(err, os.ErrExist) || errors.Is(err, store.ErrUncertain) {
		t.Fatalf("second PutIfAbsent: %v, want an error wrapping os.ErrExist", err)
	}
	if got, _ := s.Get("_versions/1.manifest"); string(got) != "first" {
		t.Fatalf("object is %q after a refused PutIfAbsent", got)
	}
	// The same bytes again: our own earlier put (a retry after a lost
	// response) counts as won.
	if err := s.PutIfAbsent("_versions/1.manifest", []byte("first")); err != nil {
		t.Fatalf("PutIfAbsent of the bytes already there: %v", err)
	}
	if err := s.Put("_versions/2.manifest", []byte("put")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent("_versions/2.manifest", []byte("x")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("PutIfAbsent over Put: %v", err)
	}
	if got := list(t, s, "_versions"); !slices.Equal(got, []string{"1.manifest", "2.manifest"}) {
		t.Fatalf("_versions holds %q", got)
	}
}

func TestS3PutIfAbsentConcurrentOneWins(t *testing.T) {
	srv := s3test.Start(t)
	// Each writer its own client, as separate processes would be.
	stores := make([]store.Store, 8)
	for w := range stores {
		stores[w] = srv.Store("ds")
	}
	raceOneWins(t, stores, 10)
}

func TestS3RangedReads(t *testing.T) {
	srv := s3test.Start(t)
	s := srv.Store("ds")
	data := []byte("0123456789abcdef")
	w, err := s.Create("data/f.lance")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range [][]byte{data[:5], data[5:]} {
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get("data/f.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an object is visible before Commit: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open("data/f.lance")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if n, err := o.Size(); err != nil || n != int64(len(data)) {
		t.Fatalf("Size = %d, %v", n, err)
	}
	for _, r := range []struct{ off, n int }{{0, 4}, {4, 8}, {12, 4}, {15, 1}, {0, 16}} {
		buf := make([]byte, r.n)
		if _, err := o.ReadAt(buf, int64(r.off)); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", r.off, r.n, err)
		}
		if !bytes.Equal(buf, data[r.off:r.off+r.n]) {
			t.Fatalf("ReadAt(%d, %d) = %q", r.off, r.n, buf)
		}
	}
	buf := make([]byte, 8)
	if n, err := o.ReadAt(buf, 12); n != 4 || !errors.Is(err, io.EOF) || string(buf[:n]) != "cdef" {
		t.Fatalf("ReadAt past the end = %d, %v", n, err)
	}
	if n, err := o.ReadAt(buf, 16); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt at the end = %d, %v", n, err)
	}
	if _, err := s.Open("data/missing.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing object: %v", err)
	}
	if _, err := s.Get("data/missing.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Get of a missing object: %v", err)
	}
	aborted, _ := s.Create("data/partial.lance")
	aborted.Write([]byte("half"))
	aborted.Abort()
	if _, err := s.Get("data/partial.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an aborted object exists: %v", err)
	}
}

func TestS3ListAndRemove(t *testing.T) {
	srv := s3test.Start(t)
	s := srv.Store("a/b")
	other := srv.Store("a/bc") // a sibling prefix sharing the first letters
	for _, n := range []string{"data/a.lance", "data/b.lance", "data/sub/c.lance"} {
		if err := s.Put(n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Put("data/z.lance", []byte("z")); err != nil {
		t.Fatal(err)
	}
	if got := list(t, s, "data"); !slices.Equal(got, []string{"a.lance", "b.lance"}) {
		t.Fatalf("List(data) = %q", got)
	}
	if got := list(t, s, "data/sub"); !slices.Equal(got, []string{"c.lance"}) {
		t.Fatalf("List(data/sub) = %q", got)
	}
	infos, err := s.(store.InfoLister).ListInfo("data")
	if err != nil {
		t.Fatal(err)
	}
	var dirs, files int
	for _, in := range infos {
		if in.Dir {
			dirs++
			if in.Name != "sub" {
				t.Fatalf("directory %q", in.Name)
			}
		} else {
			files++
			if in.Size != int64(len("data/"+in.Name)) || in.ModTime.IsZero() {
				t.Fatalf("info %+v", in)
			}
		}
	}
	if dirs != 1 || files != 2 {
		t.Fatalf("ListInfo: %d dirs, %d files", dirs, files)
	}
	if _, err := s.List("nothing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("List of a missing directory: %v", err)
	}
	if err := s.Remove("data/a.lance"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("data/a.lance"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if got := list(t, s, "data"); !slices.Equal(got, []string{"b.lance"}) {
		t.Fatalf("List after Remove = %q", got)
	}
	if s.Root() != srv.URI("a/b") {
		t.Fatalf("Root = %q", s.Root())
	}
}

func TestS3Options(t *testing.T) {
	o, err := store.S3OptionsFrom(map[string]string{
		"aws_endpoint": "http://h:1", "AWS_REGION": "eu-west-1", "access_key_id": "k",
		"aws_secret_access_key": "s", "allow_http": "true", "aws_virtual_hosted_style_request": "false",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.Endpoint != "http://h:1" || o.Region != "eu-west-1" || o.AccessKeyID != "k" || o.SecretAccessKey != "s" || !o.AllowHTTP || o.VirtualHosted {
		t.Fatalf("options %+v", o)
	}
	if _, err := store.S3OptionsFrom(map[string]string{"aws_endpoint_typo": "x"}); err == nil {
		t.Fatal("an unknown storage option was accepted")
	}
	if _, err := store.NewS3Client(context.Background(), store.S3Options{Endpoint: "http://127.0.0.1:1", Region: "r"}); err == nil {
		t.Fatal("a plain-HTTP endpoint without allow_http was accepted")
	}
	for uri, want := range map[string][2]string{
		"s3://b/p/data.lance":   {"b", "p/data.lance"},
		"s3://b":                {"b", ""},
		"s3://b/p//q/":          {"b", "p/q"},
		"s3://bucket/x/../y/ds": {"bucket", "y/ds"},
	} {
		b, p, err := store.ParseS3URI(uri)
		if err != nil || b != want[0] || p != want[1] {
			t.Fatalf("ParseS3URI(%q) = %q, %q, %v", uri, b, p, err)
		}
	}
	for _, bad := range []string{"/local/path", "s3:///nobucket", "gs://b/p"} {
		if _, _, err := store.ParseS3URI(bad); err == nil {
			t.Fatalf("ParseS3URI(%q) accepted", bad)
		}
	}
}

// A server that cannot be reached (connections cut, new ones refused):
// requests fail with a clear error naming the object, a conditional put
// says its outcome is unknown, and everything works again once it is back.
func TestS3ServerUnreachable(t *testing.T) {
	srv := s3test.Start(t)
	s := srv.Store("ds")
	if err := s.PutIfAbsent("x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	srv.Down()
	err := s.PutIfAbsent("y", []byte("2"))
	if err == nil || !strings.Contains(err.Error(), srv.URI("ds/y")) {
		t.Fatalf("PutIfAbsent with the server down: %v", err)
	}
	if !errors.Is(err, store.ErrUncertain) {
		t.Fatalf("PutIfAbsent with the server down: %v, want ErrUncertain (it cannot know)", err)
	}
	srv.Up()
	if err := s.PutIfAbsent("y", []byte("2")); err != nil {
		t.Fatalf("PutIfAbsent once reachable again: %v", err)
	}
	if got, err := s.Get("x"); err != nil || string(got) != "1" {
		t.Fatalf("Get once reachable again = %q, %v", got, err)
	}
}
