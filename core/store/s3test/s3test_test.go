package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A restarted server holds what the killed one held: bodies byte for
// byte (binary, and larger than the recorder's write buffer, put
// concurrently), keys needing escapes, deletions, and the outcome of
// conditional puts; and it decides new conditional puts by the objects it
// got back. A second restart replays what came after the first too.
func TestS3RestartKeepsObjects(t *testing.T) {
	srv := Start(t)
	c := srv.Client()
	ctx := context.Background()
	noRetry := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	put := func(key string, body []byte, ifNoneMatch bool) error {
		in := &s3.PutObjectInput{Bucket: &srv.Bucket, Key: aws.String(key), Body: bytes.NewReader(body)}
		if ifNoneMatch {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := c.PutObject(ctx, in, noRetry)
		return err
	}
	preconditionFailed := func(err error) bool {
		var re interface{ HTTPStatusCode() int }
		return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
	}

	want := map[string][]byte{}
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	want["bytes/every"] = every
	var wg sync.WaitGroup
	for i := range 8 {
		body := make([]byte, 64<<10+i)
		for j := range body {
			body[j] = byte(rand.Uint32())
		}
		key := fmt.Sprintf("bytes/large-%d", i)
		want[key] = body
		wg.Go(func() {
			if err := put(key, body, false); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	want["odd keys/a b+c%2Fd=é"] = []byte("escaped")
	want["cond"] = []byte("first")
	want["gone"] = []byte("deleted below")
	for _, k := range []string{"bytes/every", "odd keys/a b+c%2Fd=é", "gone"} {
		if err := put(k, want[k], false); err != nil {
			t.Fatal(err)
		}
	}
	if err := put("cond", []byte("first"), true); err != nil {
		t.Fatal(err)
	}
	if err := put("cond", []byte("second"), true); !preconditionFailed(err) {
		t.Fatalf("second conditional put: %v, want 412", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &srv.Bucket, Key: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	delete(want, "gone")

	check := func(when string) {
		t.Helper()
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &srv.Bucket})
		if err != nil {
			t.Fatalf("%s: list: %v", when, err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		var wantKeys []string
		for k := range want {
			wantKeys = append(wantKeys, k)
		}
		slices.Sort(wantKeys)
		if !slices.Equal(keys, wantKeys) {
			t.Fatalf("%s: keys %q, want %q", when, keys, wantKeys)
		}
		for k, body := range want {
			o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &srv.Bucket, Key: aws.String(k)})
			if err != nil {
				t.Fatalf("%s: get %q: %v", when, k, err)
			}
			got, err := io.ReadAll(o.Body)
			o.Body.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("%s: %q holds %d bytes (%v), want %d bytes as put", when, k, len(got), err, len(body))
			}
		}
		if err := put("cond", []byte("third"), true); !preconditionFailed(err) {
			t.Fatalf("%s: conditional put of an existing key: %v, want 412", when, err)
		}
	}
	check("before a restart")
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	check("after a restart")
	if err := put("later", []byte("after the first restart"), true); err != nil {
		t.Fatal(err)
	}
	want["later"] = []byte("after the first restart")
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	check("after a second restart")
}

// The recording as moto's threads and a kill leave it: entries run
// together where a long one's newline came after another entry, and the
// last one is torn. Tidied, it is one state-changing entry a line.
func TestS3RecordingTidied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recording.jsonl")
	entry := func(method, url string) string {
		return fmt.Sprintf(`{"headers": {}, "method": %q, "url": %q, "body": "", "body_encoded": false}`, method, url)
	}
	raw := entry("PUT", "/b/long") + entry("PUT", "/b/short") + "\n\n" +
		entry("GET", "/b/short") + "\n" + entry("HEAD", "/b/short") + "\n" +
		entry("DELETE", "/b/short") + "\n" + entry("PUT", "/b/torn")[:30]
	if err := os.WriteFile(path, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := tidyRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if n != 3 || len(lines) != 3 || !strings.Contains(lines[0], "/b/long") ||
		!strings.Contains(lines[1], "/b/short") || !strings.Contains(lines[2], "DELETE") {
		t.Fatalf("tidied to %d entries:\n%s", n, b)
	}

	// Unreadable before the end: not a torn tail, an error.
	if err := os.WriteFile(path, []byte(entry("PUT", "/b/a")+"\n{garbage\n"+entry("PUT", "/b/c")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tidyRecording(path); err == nil {
		t.Fatal("a recording unreadable in the middle was tidied")
	}
}

// RestartAfter: the conditional put the server answered is refused an
// answer, and is there after the restart (its client's retry would meet
// it and be refused).
func TestS3RestartAfterAnswer(t *testing.T) {
	srv := Start(t)
	c := srv.Client()
	ctx := context.Background()
	put := func(body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &srv.Bucket, Key: aws.String("trapped"), Body: strings.NewReader(body), IfNoneMatch: aws.String("*"),
		}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		return err
	}
	restarted := srv.RestartAfter(http.MethodPut, "/trapped")
	if err := put("first"); err == nil {
		t.Fatal("the put whose answer the restart took succeeded")
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &srv.Bucket, Key: aws.String("trapped")})
	if err != nil {
		t.Fatalf("the put answered before the restart is gone: %v", err)
	}
	got, _ := io.ReadAll(o.Body)
	o.Body.Close()
	if string(got) != "first" {
		t.Fatalf("after the restart the object holds %q", got)
	}
	var re interface{ HTTPStatusCode() int }
	if err := put("second"); !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Fatalf("the retry of the conditional put: %v, want 412", err)
	}
}
