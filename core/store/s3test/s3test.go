// Package s3test runs a real S3-compatible server on loopback for tests,
// the way net/http/httptest runs an HTTP server: Start launches it on a
// free port with its data in a temporary directory, creates a bucket, and
// stops it when the test ends. Clients reach it through a loopback proxy
// (Server.Endpoint) that can cut their connections without touching the
// server (Down, Up, Cut). Restart kills the server process and starts a
// new one on the same port with the objects the old one held, behind the
// same proxy; Kill stops it without restarting. KillAfter and RestartAfter
// do so once the server has answered a given request, before the answer
// reaches the client.
//
// The binary is $PERSISTING_S3_SERVER: moto's server mode (moto_server),
// which `make test` installs in a venv of its own and sets, or SeaweedFS
// (weed) or MinIO. Without it the test skips and says why (and `make
// test` fails on any skip it does not allow). Every one of them enforces
// conditional writes: a PUT with If-None-Match: * of an existing key fails
// with 412 Precondition Failed, which the S3 store's PutIfAbsent relies on.
//
// Restart and moto. MinIO and weed keep their objects in the data
// directory, which the new process reuses. moto keeps them in memory, so
// Start turns on moto's recorder (MOTO_RECORDER_FILEPATH, a file in the
// temporary directory): moto appends every request it receives to it,
// bodies included (base64), and the new process rebuilds the old one's
// state by replaying the requests that change state (everything but GET
// and HEAD) in the order they were recorded, before the proxy lets clients
// in again. Requests are replayed with their headers, so conditional PUTs
// meet the same objects and are decided as they were.
// TestS3RestartKeepsObjects checks Restart against whichever server runs;
// it has run against moto only.
//
// A request in flight when the server is killed is one of two things.
// moto records a request once it has read its whole body and before it
// acts on it; a recorded request is replayed, so after the restart it has
// taken effect whether or not the old process acted on it or answered (a
// store that committed but lost the answer; the client saw its connection
// break). A request whose body was not wholly received is not recorded
// and has no effect (it was never acted on). A kill in the middle of
// moto's write to the recording leaves a torn last entry, which is
// dropped: moto had not acted on it.
//
// What a replay does not restore: moto's view of time (Last-Modified is
// the replay's); random identifiers it hands out, version ids and the
// upload ids of multipart uploads, so the replayed parts name an upload
// that no longer exists and a multipart object, even one completed long
// before the kill, is lost; and the outcome of two conflicting requests
// in flight at once (two conditional PUTs of one key): moto records them
// in the order they arrive, not the order it decides them, so the replay
// may let the other one win. The S3 store makes no multipart uploads, and
// the tests that restart have one writer per key.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	record   string // moto's recording, see the package comment
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
	if kind == KindMoto {
		s.record = filepath.Join(s.dir, "recording.jsonl")
	}
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
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1",
		// Recording stays off until start turns it on: the replay must
		// come first, and the readiness probes need not be kept.
		"MOTO_RECORDER_FILEPATH="+s.record)
	return cmd
}

// direct is the client of requests to the server itself, not through the
// proxy. It keeps no connection: one kept from before a restart would
// reach the killed server, and a POST on it is not retried.
var direct = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func (s *Server) ready() bool {
	path := "/"
	switch s.kind {
	case KindMinIO:
		path = "/minio/health/ready"
	case KindMoto:
		path = "/moto-api/"
	}
	resp, err := direct.Get("http://" + s.addr + path)
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
			}
			if s.kind != KindMoto {
				return nil
			}
			if err := s.replay(); err != nil {
				return err
			}
			return s.motoAPI("recorder/start-recording")
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

// Restart kills the server's process group (SIGKILL: requests in flight
// die with it, see the package comment for what becomes of them) and
// starts a new server on the same address with the objects the old one
// held. The proxy refuses new connections from the kill until the new
// server holds those objects; clients keep the same Endpoint. A Down proxy stays
// down. Restart also starts a server stopped by Kill (an outage longer
// than a restart). It may be called from any goroutine. If the new server
// cannot start (another process took the port meanwhile) or replay,
// Restart leaves it dead and says why.
func (s *Server) Restart() error {
	s.halt()
	return s.resume()
}

// KillAfter arms a kill for the next request through the proxy whose
// method is method and whose request line (the path and query, as sent)
// contains match. The server receives that request, acts on it and
// answers; it is killed before the answer reaches the client, whose
// connection then breaks: the request has taken effect and its client
// cannot know, the case a client's retries must resolve. The channel is
// closed once the server is dead; it stays dead until Restart. Arming
// again replaces a trap not yet sprung.
func (s *Server) KillAfter(method, match string) <-chan struct{} {
	killed := make(chan struct{})
	s.killAfter(method, match, func() { close(killed) })
	return killed
}

// RestartAfter is KillAfter, then Restart at once; the restart's result
// comes on the channel.
func (s *Server) RestartAfter(method, match string) <-chan error {
	done := make(chan error, 1)
	s.killAfter(method, match, func() { go func() { done <- s.resume() }() })
	return done
}

func (s *Server) killAfter(method, match string, then func()) {
	s.proxy.arm(&trap{method: []byte(method), match: []byte(match), spring: func() {
		// The server dies before the client learns anything: a read-back
		// on another connection must not reach the old server.
		s.halt()
		then()
	}})
}

// halt refuses new connections at the proxy and kills the server. Held,
// not Down: Down would cut the open connections, and a request already
// through the proxy should meet the kill, not a cut the server survives.
func (s *Server) halt() {
	s.proxy.setHeld(true)
	s.Kill()
}

// resume starts the server again after halt and lets clients in.
func (s *Server) resume() error {
	defer s.proxy.setHeld(false)
	if err := s.start(); err != nil {
		// Dead rather than serving part of the objects.
		s.Kill()
		return err
	}
	return nil
}

// replay rebuilds the state of moto's predecessors on this address from
// the recording; s.mu is held.
func (s *Server) replay() error {
	n, err := tidyRecording(s.record)
	if err != nil || n == 0 {
		return err
	}
	return s.motoAPI("recorder/replay-recording")
}

// tidyRecording rewrites the recording at path as moto's replay reads it,
// one request a line, and returns how many it kept: those that change
// state (not GET or HEAD, which would only slow the replay). It parses
// JSON values rather than lines because moto's threads share the file: an
// entry longer than Python's write buffer reaches it in two writes (the
// entry, then its newline), and another entry may come between them.
// What a kill tore off the end, with no newline after it, is dropped (moto
// had not acted on it); anything else unreadable is an error.
func tidyRecording(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var out bytes.Buffer
	n := 0
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		at := dec.InputOffset()
		var entry json.RawMessage
		if err := dec.Decode(&entry); err == io.EOF {
			break
		} else if err != nil {
			if tail := b[at:]; bytes.Contains(bytes.TrimSpace(tail), []byte("\n")) {
				return 0, fmt.Errorf("s3test: moto's recording %s unreadable at byte %d: %v", path, at, err)
			}
			break
		}
		var req struct{ Method string }
		if err := json.Unmarshal(entry, &req); err != nil {
			return 0, fmt.Errorf("s3test: moto's recording %s at byte %d: %v", path, at, err)
		}
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			continue
		}
		out.Write(entry)
		out.WriteByte('\n')
		n++
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return 0, err
	}
	return n, os.Rename(tmp, path)
}

// motoAPI posts to one of moto's own endpoints, /moto-api/{op}.
func (s *Server) motoAPI(op string) error {
	resp, err := direct.Post("http://"+s.addr+"/moto-api/"+op, "", nil)
	if err != nil {
		return fmt.Errorf("s3test: moto %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("s3test: moto %s: %s: %s", op, resp.Status, b)
	}
	return nil
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
