package remoting

import (
	"sync"
	"time"
)

// workerPool runs request handlers on reused goroutines. A handler started on a
// fresh goroutine grows its stack from the minimum on every request (the send
// path goes through header parsing, the store and the encoder), which profiling
// showed as ~9% of broker CPU in runtime.morestack; reused goroutines keep their
// grown stacks. A task that finds no idle worker gets a new goroutine, so a
// handler that blocks (a parked long-poll pull) never delays others; workers
// idle for workerIdle exit, so a burst does not leave goroutines behind.
type workerPool struct {
	tasks chan task
}

type task struct {
	c   *Conn
	h   Handler
	req *Command
}

const workerIdle = 10 * time.Second

// workers is shared by every connection of the process.
var workers = &workerPool{tasks: make(chan task)}

func (p *workerPool) submit(t task) {
	select {
	case p.tasks <- t: // an idle worker took it
	default:
		go p.work(t)
	}
}

var idleTimers = sync.Pool{New: func() any {
	t := time.NewTimer(workerIdle)
	t.Stop()
	return t
}}

func (p *workerPool) work(t task) {
	t.c.run(t.h, t.req)
	timer := idleTimers.Get().(*time.Timer)
	defer idleTimers.Put(timer)
	for {
		timer.Reset(workerIdle)
		select {
		case t = <-p.tasks:
			timer.Stop()
			t.c.run(t.h, t.req)
		case <-timer.C:
			return
		}
	}
}
