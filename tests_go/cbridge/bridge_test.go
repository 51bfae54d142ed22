// Package cbridge_test tests persisting's C ABI from C: it builds cbridge with
// -buildmode=c-shared, compiles testdata/bridge.c against the generated
// header, and runs it. The C program builds Arrow C Data Interface structs by
// hand, so these tests see exactly what a foreign caller sees: status codes,
// error strings that must go back through persisting_free, release callbacks
// that must run exactly once, ArrowArrayStreams, the eventfd.
package cbridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sections are the "ok NAME" lines a passing run of bridge.c prints.
var sections = []string{
	"open", "bad_config", "append", "read", "flush", "stats", "schema_conflict",
	"bad_batches", "reserved_token", "invalid_handle", "null_pointers", "locked",
	"threads", "wal", "versions", "close",
}

var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "persisting-cbridge-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type built struct {
	once sync.Once
	prog string
	err  error
}

var variants sync.Map // build tags -> *built

// bridgeProgram builds libpersisting.so with the given build tags and
// bridge.c against it, once per tag set, and returns the program's path.
func bridgeProgram(t *testing.T, tags string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not in PATH")
	}
	v, _ := variants.LoadOrStore(tags, &built{})
	b := v.(*built)
	b.once.Do(func() { b.prog, b.err = build(goBin, gcc, tags) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.prog
}

func build(goBin, gcc, tags string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src, err := filepath.Abs(filepath.Join("testdata", "bridge.c"))
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	name := "plain"
	if tags != "" {
		name = strings.NewReplacer(",", "_", " ", "_").Replace(tags)
	}
	dir := filepath.Join(workDir, "build-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}

	args := []string{"build", "-buildmode=c-shared"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, "-o", filepath.Join(dir, "libpersisting.so"), "github.com/persisting/persisting/cbridge")
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "libpersisting.h")); err != nil {
		return "", fmt.Errorf("go build wrote no header: %v", err)
	}

	prog := filepath.Join(dir, "bridge")
	// -isystem: warnings in cgo's generated header are not ours to fix;
	// -Werror holds for bridge.c itself.
	cmd = exec.CommandContext(ctx, gcc, "-std=c11", "-g", "-Wall", "-Wextra", "-Werror", "-pthread",
		"-isystem", dir, "-I", filepath.Join(filepath.Dir(gomod), "cbridge"), src, "-L"+dir, "-lpersisting", "-Wl,-rpath,"+dir, "-o", prog)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %v\n%s", err, out)
	}
	return prog, nil
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs argv (the bridge program, possibly under valgrind) with the
// scratch directory dir and extra arguments after it.
func run(t *testing.T, env []string, argv []string, dir string, extra ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append(append(argv[1:len(argv):len(argv)], dir), extra...)
	cmd := exec.CommandContext(ctx, argv[0], args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		r.code = exit.ExitCode()
	default:
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", argv[0], err, r.stdout, r.stderr)
	}
	return r
}

// expectPass checks a run that should have passed every check and reported
// every section ok.
func expectPass(t *testing.T, r result, sections []string) {
	t.Helper()
	if r.code != 0 || !strings.Contains(r.stdout, "\nPASS\n") || strings.Contains(r.stderr, "FAIL") {
		t.Fatalf("bridge.c failed (exit %d)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, s := range sections {
		if !strings.Contains(r.stdout, "ok "+s+"\n") {
			t.Errorf("section %s did not report ok\nstdout:\n%s", s, r.stdout)
		}
	}
}

// TestBridgeFromC runs every section of bridge.c: open (and the end-of-
// recovery completion), bad configs, three appends (first offsets, release
// callbacks, nulls, child offsets, unknown null counts), reads through
// ArrowArrayStream (ranges, clipping, an overflowing limit, a negative offset,
// empty streams, nonblock), flush with its completion through the eventfd and
// persisting_poll, reads of flushed rows from the dataset (and WOULD_BLOCK
// without blocking), stats, a schema conflict, malformed batches, the
// reserved token 0, invalid and closed handles, NULL pointers and a negative
// poll capacity (refused without poisoning), the directory lock, appends from
// concurrent C threads, a WAL bucket (PENDING appends), dataset versions
// (persisting_versions, persisting_read_version), close and reopen with every
// row read back and an append racing the end of recovery.
func TestBridgeFromC(t *testing.T) {
	t.Parallel()
	prog := bridgeProgram(t, "")
	r := run(t, nil, []string{prog}, t.TempDir())
	expectPass(t, r, sections)
	t.Logf("stdout:\n%s", r.stdout)
}

// TestBridgePoison provokes a panic inside an export (persisting_poll writing
// a completion through a bogus non-NULL pointer) in a process of its own: the
// call reports POISONED, every later call keeps failing with POISONED and the
// stored reason, close still releases the directory lock.
func TestBridgePoison(t *testing.T) {
	t.Parallel()
	prog := bridgeProgram(t, "")
	expectPass(t, run(t, nil, []string{prog}, t.TempDir(), "poison"), []string{"poison"})
}

// TestBridgeWALRecovery has one process log rows through a WAL bucket and
// _exit without closing (nothing flushed), and a second process open the same
// directory and append at once: the end-of-recovery completion reports the
// replayed rows only, and every row reads back intact.
func TestBridgeWALRecovery(t *testing.T) {
	t.Parallel()
	prog := bridgeProgram(t, "")
	dir := t.TempDir()
	r := run(t, nil, []string{prog}, dir, "crash")
	if r.code != 0 || !strings.Contains(r.stdout, "crashing\n") || strings.Contains(r.stderr, "FAIL") {
		t.Fatalf("crash run failed (exit %d)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	expectPass(t, run(t, nil, []string{prog}, dir, "recover"), []string{"recover"})
}

// TestBridgeUnderValgrind runs bridge.c under memcheck, which sees a library
// that reads producer buffers after their release callback ran (bridge.c
// scribbles over and frees them there), or a consumer-side read past an
// exported buffer. The library is built with -tags valgrind, Go's memcheck
// annotations for its heap and stacks; without them the runtime produces
// thousands of false reports. Asynchronous preemption stays off (its signal
// frames on goroutine stacks confuse memcheck) and testdata/go-runtime.supp
// hides the vectorized C-string scan of C.GoString. Leak checking is off:
// the Go runtime never frees its heap, and memcheck's leak scan of the Go
// heap pools crashes valgrind 3.19.
func TestBridgeUnderValgrind(t *testing.T) {
	if testing.Short() {
		t.Skip("valgrind run skipped in -short mode")
	}
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		t.Skip("valgrind not in PATH")
	}
	t.Parallel()
	prog := bridgeProgram(t, "valgrind")
	supp, err := filepath.Abs(filepath.Join("testdata", "go-runtime.supp"))
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, []string{"GODEBUG=asyncpreemptoff=1"},
		[]string{vg, "--error-exitcode=97", "--leak-check=no", "--suppressions=" + supp, prog},
		t.TempDir())
	if r.code == 97 {
		t.Fatalf("valgrind reported errors\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	expectPass(t, r, sections)
}
