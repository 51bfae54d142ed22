package s3test

import (
	"io"
	"net"
	"sync"
)

// proxy forwards TCP connections from its own loopback port to the
// server's, and can cut them: the way a test loses the connection to the
// object store without stopping it.
type proxy struct {
	addr   string
	target string

	mu    sync.Mutex
	l     net.Listener
	down  bool
	conns map[net.Conn]struct{}
	quit  bool
}

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
		if p.down || p.quit {
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
	if p.down || p.quit {
		p.mu.Unlock()
		u.Close()
		return
	}
	p.conns[u] = struct{}{}
	p.mu.Unlock()
	defer p.drop(u)
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done
}

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

func (p *proxy) close() {
	p.mu.Lock()
	p.quit = true
	p.cutLocked()
	p.mu.Unlock()
	p.l.Close()
}
