package remoting

import (
	"fmt"
	"net"
	"runtime"
	"time"
)

// The write path. Writers (handlers answering, Invoke) encode their frame into
// the connection's pending buffer under wmu and wake the connection's flusher
// goroutine if it is idle; they never wait for the socket. The flusher swaps
// the pending buffer for its spare one and writes everything with one write
// (writev when large bodies ride along as their own slices), outside the lock,
// so responses that complete while a write is in progress share the next one.
// Before writing, the woken flusher yields once so handlers already runnable
// append their responses first: without that yield the flusher, woken on the
// idle core, wrote almost every frame alone (0.82 broker writes per message
// under mqbench, as with the earlier write-under-the-lock path); with it 0.2,
// and BenchmarkServerRoundTrip went from 1.6 to 0.35 writes and from ~45 to
// ~30 µs of CPU per round trip.

const (
	// maxPending bounds the bytes queued for a peer that reads slower than we
	// answer; writers wait (the write deadline limits how long) beyond it.
	maxPending = 4 << 20
	// closeDrain bounds how long Close spends writing what is still pending.
	closeDrain = 5 * time.Second
)

// wqueue is what the flusher takes in one swap.
type wqueue struct {
	buf   []byte   // encoded frames; bodies below largeBody are copied in
	segs  [][]byte // when large bodies are queued: buf stretches and bodies, in order
	mark  int      // start of the buf stretch not yet in segs
	calls []func() // OnWritten of the large bodies in segs
	size  int      // bytes queued
}

func (q *wqueue) empty() bool { return q.size == 0 }

// addBody queues a body slice to be written from the caller's memory.
func (q *wqueue) addBody(b []byte) {
	if len(q.buf) > q.mark {
		q.segs = append(q.segs, q.buf[q.mark:len(q.buf):len(q.buf)])
		q.mark = len(q.buf)
	}
	q.segs = append(q.segs, b)
	q.size += len(b)
}

// reset empties the queue, keeping its buffers unless they grew large.
func (q *wqueue) reset() {
	if cap(q.buf) > maxKeptWriteBuffer {
		q.buf = nil
	} else {
		q.buf = q.buf[:0]
	}
	clear(q.segs)
	q.segs = q.segs[:0]
	clear(q.calls)
	q.calls = q.calls[:0]
	q.mark, q.size = 0, 0
}

// bodyLen is the encoded length of a command's body.
func (c *Command) bodyLen() int {
	if c.Body != nil {
		return len(c.Body)
	}
	n := 0
	for _, p := range c.BodyParts {
		n += len(p)
	}
	return n
}

// written runs the command's OnWritten, if any.
func (c *Command) written() {
	if c.OnWritten != nil {
		c.OnWritten()
	}
}

// write queues one frame for the flusher. It returns an error if the connection
// has already failed or is closing (the frame is dropped), or an *encodeError
// if the frame cannot be encoded (the connection is fine). A nil error means
// the frame is queued: if the write then fails, the connection closes, which
// fails the Invokes waiting on it. cmd.OnWritten runs exactly once in any case.
func (c *Conn) write(cmd *Command, opaque, flag int32, st SerializeType) error {
	c.wmu.Lock()
	for c.werr == nil && !c.wclosing && (c.wq.size >= maxPending || c.noMerge && (c.wbusy || !c.wq.empty())) {
		c.wspace.Wait()
	}
	if c.werr != nil || c.wclosing {
		err := c.werr
		c.wmu.Unlock()
		cmd.written()
		if err == nil {
			err = ErrConnClosed
		}
		return err
	}
	q := &c.wq
	start := len(q.buf)
	var err error
	q.buf, err = appendFrameHead(q.buf, cmd, opaque, flag, st)
	if err != nil {
		q.buf = q.buf[:start]
		c.wmu.Unlock()
		cmd.written()
		return &encodeError{err}
	}
	q.size += len(q.buf) - start
	copied := true
	if cmd.Body != nil {
		if len(cmd.Body) >= largeBody {
			q.addBody(cmd.Body)
			copied = false
		} else {
			q.buf = append(q.buf, cmd.Body...)
			q.size += len(cmd.Body)
		}
	} else if n := cmd.bodyLen(); n >= largeBody {
		for _, p := range cmd.BodyParts {
			if len(p) > 0 {
				q.addBody(p)
			}
		}
		copied = false
	} else {
		for _, p := range cmd.BodyParts {
			q.buf = append(q.buf, p...)
		}
		q.size += n
	}
	if !copied && cmd.OnWritten != nil {
		q.calls = append(q.calls, cmd.OnWritten)
	}
	if !c.wbusy {
		c.wbusy = true
		select {
		case c.wkick <- struct{}{}:
		default:
		}
	}
	c.wmu.Unlock()
	if copied {
		// The body's bytes are in our buffer; its owner may reuse them.
		cmd.written()
	}
	return nil
}

// flushLoop is the connection's flusher: it writes whatever is pending each
// time it is woken, until the connection closes.
func (c *Conn) flushLoop() {
	var out wqueue
	for {
		select {
		case <-c.wkick:
			// Let handlers that are already runnable append their responses
			// first, so they share this write.
			runtime.Gosched()
		case <-c.done:
			c.wmu.Lock()
			c.failPending()
			c.wmu.Unlock()
			return
		}
		for {
			c.wmu.Lock()
			if c.wq.empty() || c.werr != nil {
				c.wbusy = false
				c.signalDrained()
				if c.noMerge {
					c.wspace.Broadcast()
				}
				c.wmu.Unlock()
				break
			}
			c.wq, out = out, c.wq
			c.wspace.Broadcast()
			c.wmu.Unlock()

			err := c.flushQueue(&out)
			for _, f := range out.calls {
				f()
			}
			out.reset()
			if err != nil {
				c.wmu.Lock()
				c.werr = fmt.Errorf("remoting: write to %s: %w", c.remote, err)
				c.failPending()
				c.wbusy = false
				c.signalDrained()
				c.wspace.Broadcast()
				c.wmu.Unlock()
				c.Close()
				return
			}
		}
	}
}

// flushQueue writes a swapped-out queue to the socket; no lock held.
func (c *Conn) flushQueue(q *wqueue) error {
	if c.cfg.writeTimeout > 0 {
		if now := time.Now(); now.Sub(c.wdeadlineSet) >= deadlineSlack(c.cfg.writeTimeout) {
			c.nc.SetWriteDeadline(now.Add(c.cfg.writeTimeout))
			c.wdeadlineSet = now
		}
	}
	c.flushes.Add(1)
	if len(q.segs) == 0 {
		_, err := c.nc.Write(q.buf)
		return err
	}
	if len(q.buf) > q.mark {
		q.segs = append(q.segs, q.buf[q.mark:])
	}
	bufs := net.Buffers(q.segs)
	_, err := bufs.WriteTo(c.nc)
	return err
}

// failPending drops what is queued, releasing large bodies; wmu held.
func (c *Conn) failPending() {
	for _, f := range c.wq.calls {
		f()
	}
	c.wq.reset()
}

// signalDrained wakes a Close waiting for the queue to empty; wmu held.
func (c *Conn) signalDrained() {
	if c.wdrained != nil {
		close(c.wdrained)
		c.wdrained = nil
	}
}

// drainWrites stops new writes and waits up to d for the flusher to write
// what is queued; past d, closing the socket stops the flusher.
func (c *Conn) drainWrites(d time.Duration) {
	c.wmu.Lock()
	c.wclosing = true
	c.wspace.Broadcast()
	if (c.wq.empty() && !c.wbusy) || c.werr != nil || d <= 0 {
		c.wmu.Unlock()
		return
	}
	ch := make(chan struct{})
	c.wdrained = ch
	if !c.wbusy {
		c.wbusy = true
		select {
		case c.wkick <- struct{}{}:
		default:
		}
	}
	c.wmu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}
