package s3test

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
)

// proxy forwards TCP connections from its own loopback port to the
// server's, and can cut them: the way a test loses the connection to the
// object store without stopping it. It also holds clients off while the
// server restarts, and withholds the answer to a trapped request.
type proxy struct {
	addr   string
	target string

	mu    sync.Mutex
	l     net.Listener
	down  bool // Down
	held  bool // a restart: the server's address may not be the server yet
	conns map[net.Conn]struct{}
	quit  bool

	trap atomic.Pointer[trap] // armed by arm, taken by the request it catches
}

// trap catches the next request whose request line begins with method
// and contains match: the server's answer to it is never forwarded, and
// spring runs when it arrives, before the client's connection is closed.
type trap struct {
	method, match []byte
	spring        func()
}

func (p *proxy) arm(t *trap) { p.trap.Store(t) }

func newProxy(target string) (*proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]struct{}{}}
	go p.serve(l)
	return p, nil
}

func (p *proxy) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.refusing() {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.forward(c)
	}
}

func (p *proxy) forward(c net.Conn) {
	defer p.drop(c)
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.refusing() {
		p.mu.Unlock()
		u.Close()
		return
	}
	p.conns[u] = struct{}{}
	p.mu.Unlock()
	defer p.drop(u)
	// caught is the trap this connection's current request sprang; it
	// is set before the request reaches the server, so before its answer.
	var caught atomic.Pointer[trap]
	done := make(chan struct{}, 2)
	go func() { p.requests(u, c, &caught); done <- struct{}{} }()
	go func() { answers(c, u, &caught); done <- struct{}{} }()
	<-done
}

// requests copies from the client to the server, watching for the trap.
// A request line is at the start of what one read returns (clients write
// the line and headers at once, and send no request before the answer to
// the last one).
func (p *proxy) requests(u, c net.Conn, caught *atomic.Pointer[trap]) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			line, _, _ := bytes.Cut(buf[:n], []byte("\r\n"))
			if t := p.trap.Load(); t != nil && t.catches(line) && p.trap.CompareAndSwap(t, nil) {
				caught.Store(t)
			}
			if _, err := u.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (t *trap) catches(line []byte) bool {
	method, rest, _ := bytes.Cut(line, []byte(" "))
	return bytes.Equal(method, t.method) && bytes.Contains(rest, t.match)
}

// answers copies from the server to the client, but for the answer to a
// caught request: then it springs the trap and returns, and forward
// closes both connections.
func answers(c, u net.Conn, caught *atomic.Pointer[trap]) {
	buf := make([]byte, 32<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			if t := caught.Load(); t != nil {
				t.spring()
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// refusing reports whether new connections are closed at once; p.mu is
// held.
func (p *proxy) refusing() bool { return p.down || p.held || p.quit }

func (p *proxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cutLocked closes every open connection; p.mu is held.
func (p *proxy) cutLocked() {
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked()
}

// setDown(true) cuts the open connections and refuses new ones (accepted
// and closed at once: the client sees a reset, as from a dead server).
func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		p.cutLocked()
	}
}

// setHeld(true) refuses new connections and leaves the open ones alone
// (a restart kills the server under them next).
func (p *proxy) setHeld(held bool) {
	p.mu.Lock()
	p.held = held
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.mu.Lock()
	p.quit = true
	p.cutLocked()
	p.mu.Unlock()
	p.l.Close()
}
