// Package s3test runs a real S3-compatible server (MinIO) on loopback for
// tests, the way net/http/httptest runs an HTTP server: Start launches it on
// a free port with its data in a temporary directory, creates a bucket, and
// stops it when the test ends. Restart stops and starts it on the same port
// and data (a server restart in the middle of a write); Kill stops it
// without restarting.
//
// The binary is $PERSISTING_S3_SERVER; `make test` builds MinIO with
// `go install` into a cache directory and sets it. Without it the test
// skips and says why (and `make test` fails on any skip it does not allow).
//
// MinIO enforces conditional writes: a PUT with If-None-Match: * of an
// existing key fails with 412 Precondition Failed, which the S3 store's
// PutIfAbsent relies on.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/persisting/persisting/core/store"
)

// EnvServer names the server binary.
const EnvServer = "PERSISTING_S3_SERVER"

// Credentials of the test server.
const (
	AccessKey = "persisting"
	SecretKey = "persisting-secret"
	Region    = "us-east-1"
)

// Server is one running test server. Clients reach it through a loopback
// proxy (Endpoint), so a test can cut the connection without touching the
// server: Down cuts every open connection and refuses new ones, Up lets
// them in again.
type Server struct {
	t        testing.TB
	bin      string
	kind     string
	dir      string
	addr     string // the server's own address
	Endpoint string // the proxy: http://127.0.0.1:port
	Bucket   string // created by Start

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	log   *os.File
	proxy *proxy
}

// Kinds of server the harness knows, by the binary's name.
const (
	KindMinIO = "minio"
	KindMoto  = "moto"
	KindWeed  = "weed"
)

// Binary returns the server binary and its kind, or "" and why there is
// none.
func Binary() (bin, kind, why string) {
	bin = os.Getenv(EnvServer)
	if bin == "" {
		return "", "", "no S3-compatible test server: set " + EnvServer + " to a moto_server, weed or minio binary (make test installs one)"
	}
	if _, err := os.Stat(bin); err != nil {
		return "", "", fmt.Sprintf("%s=%s: %v", EnvServer, bin, err)
	}
	switch base := filepath.Base(bin); {
	case strings.HasPrefix(base, "moto"):
		kind = KindMoto
	case strings.HasPrefix(base, "weed"):
		kind = KindWeed
	case strings.HasPrefix(base, "minio"):
		kind = KindMinIO
	default:
		return "", "", fmt.Sprintf("%s=%s: not a server this harness knows (moto_server, weed, minio)", EnvServer, bin)
	}
	return bin, kind, ""
}

// Start starts a server and creates one bucket; the test's cleanup stops
// it. A test without the binary skips.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, kind, why := Binary()
	if bin == "" {
		t.Skipf("skipping: %s", why)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	s := &Server{t: t, bin: bin, kind: kind, dir: t.TempDir(), Bucket: "persisting-test-" + hex.EncodeToString(rnd[:])}
	t.Cleanup(s.Kill)
	// A port found free may be taken again before the server binds it
	// (tests of other packages start servers too): then try another.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		s.addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
		if err = s.start(); err == nil {
			break
		}
		s.Kill()
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProxy(s.addr)
	if err != nil {
		t.Fatalf("s3test: proxy: %v", err)
	}
	s.proxy = p
	s.Endpoint = "http://" + p.addr
	t.Cleanup(p.close)
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &s.Bucket}); err != nil {
		t.Fatalf("s3test: create bucket: %v", err)
	}
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3test: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) command() *exec.Cmd {
	host, port, _ := net.SplitHostPort(s.addr)
	data := filepath.Join(s.dir, "data")
	var cmd *exec.Cmd
	switch s.kind {
	case KindMoto:
		cmd = exec.Command(s.bin, "-H", host, "-p", port)
	case KindWeed:
		os.MkdirAll(data, 0o755)
		cmd = exec.Command(s.bin, "mini", "-dir="+data, "-ip="+host, "-ip.bind="+host, "-s3.port="+port)
	default:
		cmd = exec.Command(s.bin, "server", "--quiet", "--address", s.addr, "--console-address", "127.0.0.1:0", data)
	}
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	return cmd
}

func (s *Server) ready() bool {
	path := "/"
	switch s.kind {
	case KindMinIO:
		path = "/minio/health/ready"
	case KindMoto:
		path = "/moto-api/"
	}
	resp, err := http.Get("http://" + s.addr + path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 500
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := s.command()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("s3test: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done, s.log = cmd, done, logf
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("s3test: server exited at start: %s", b)
		default:
		}
		if s.ready() {
			// Ours, not another server already on the port: ours is
			// still running a moment later (a failed bind exits at once).
			select {
			case <-done:
				b, _ := os.ReadFile(logf.Name())
				return fmt.Errorf("s3test: server exited at start: %s", b)
			case <-time.After(100 * time.Millisecond):
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("s3test: %s not ready after 90 s", s.bin)
}

// Kill stops the server (its whole process group) at once; it may be
// called more than once.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.log.Close()
	s.cmd = nil
}

// Down cuts every open connection to the server and refuses new ones, as
// a server that died or a network that failed; the server keeps its data.
func (s *Server) Down() { s.proxy.setDown(true) }

// Up lets connections through again after Down.
func (s *Server) Up() { s.proxy.setDown(false) }

// Cut breaks the connections open now (requests in flight fail midway)
// and lets new ones through.
func (s *Server) Cut() { s.proxy.cut() }

// Kind names the server ("moto", "weed", "minio").
func (s *Server) Kind() string { return s.kind }

// StorageOptions are the options, named as pylance's storage_options, that
// reach the server.
func (s *Server) StorageOptions() map[string]string {
	return map[string]string{
		"aws_endpoint":          s.Endpoint,
		"aws_region":            Region,
		"aws_access_key_id":     AccessKey,
		"aws_secret_access_key": SecretKey,
		"allow_http":            "true",
	}
}

// Options are the S3Options that reach the server.
func (s *Server) Options() store.S3Options {
	o, err := store.S3OptionsFrom(s.StorageOptions())
	if err != nil {
		panic(err)
	}
	return o
}

// URI is s3://{bucket}/{prefix}.
func (s *Server) URI(prefix string) string { return "s3://" + s.Bucket + "/" + prefix }

// Store opens the store at prefix of the test bucket.
func (s *Server) Store(prefix string) store.Store {
	st, err := store.OpenS3(s.URI(prefix), s.StorageOptions())
	if err != nil {
		s.t.Fatalf("s3test: open store: %v", err)
	}
	return st
}

// Client is an SDK client of the server, for what the Store does not do.
func (s *Server) Client() *s3.Client {
	c, err := store.NewS3Client(context.Background(), s.Options())
	if err != nil {
		s.t.Fatalf("s3test: client: %v", err)
	}
	return c.API()
}
