package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/config"
)

// Slots. An extension point whose implementation may change on a running
// process (the replication mode) is held in a Slot: callers Acquire the
// current module for the duration of one call and Release it. Swap starts the
// replacement (built by the caller) beside the current one, waits (bounded)
// until it says it is ready, switches an atomic pointer (new calls go to the
// new module from that instant; there is nothing to queue), waits for the
// calls still on the old module to finish, and stops it. A swap that cannot
// complete stops the replacement and leaves the current module in place, with
// the reason. docs/architecture.md, Slots and hot swap, says where slots are
// used.

// Build creates, provisions and validates a module outside a kernel run; the
// caller owns its Start, Stop and Cleanup (see Slot). A module that loads other
// modules cannot be built alone.
func Build(ctx context.Context, cfg *config.Config, logger zerolog.Logger, id ModuleID) (Module, error) {
	k := New(cfg, logger)
	m, err := k.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(k.loaded) != 1 {
		_ = k.cleanup()
		return nil, fmt.Errorf("module %s loads other modules and cannot be built alone", id)
	}
	return m, nil
}

// StartModule runs a built module's Start, if it has one.
func StartModule(m Module) error {
	if s, ok := m.(Starter); ok {
		return s.Start()
	}
	return nil
}

// RetireModule runs a built module's Stop and Cleanup, if it has them.
func RetireModule(ctx context.Context, m Module) error {
	var errs []error
	if s, ok := m.(Stopper); ok {
		errs = append(errs, s.Stop(ctx))
	}
	if c, ok := m.(CleanerUpper); ok {
		errs = append(errs, c.Cleanup())
	}
	return errors.Join(errs...)
}

// Slot holds the active module of one extension point.
type Slot[T Module] struct {
	name string
	cur  atomic.Pointer[Lease[T]]
	mu   sync.Mutex // one swap at a time
}

// Lease is the module a caller acquired; Release it when the call is done.
type Lease[T Module] struct {
	Value T
	ID    ModuleID
	calls atomic.Int64
}

// Release ends the call that acquired the lease.
func (l *Lease[T]) Release() { l.calls.Add(-1) }

// NewSlot returns a slot holding v (built and started by the caller).
func NewSlot[T Module](name string, v T) *Slot[T] {
	s := &Slot[T]{name: name}
	s.cur.Store(&Lease[T]{Value: v, ID: v.MQDModule().ID})
	return s
}

// Acquire returns the current module, counted as in use until Release.
func (s *Slot[T]) Acquire() *Lease[T] {
	for {
		l := s.cur.Load()
		l.calls.Add(1)
		if s.cur.Load() == l {
			return l
		}
		l.calls.Add(-1) // swapped in between: take the new one
	}
}

// Current returns the current module without counting a call (status only).
func (s *Slot[T]) Current() T { return s.cur.Load().Value }

// CurrentID returns the current module's ID.
func (s *Slot[T]) CurrentID() ModuleID { return s.cur.Load().ID }

// SwapPlan says how to swap.
type SwapPlan[T Module] struct {
	// Next is the replacement, built (Build) but not started.
	Next T
	// Ready is polled after Next started until it returns nil or CatchUp
	// elapses (nil Ready: ready at once).
	Ready   func(next T) error
	CatchUp time.Duration
	// Drain bounds the wait for calls still on the old module before it is
	// stopped anyway.
	Drain time.Duration
}

// SwapReport describes a completed or abandoned swap.
type SwapReport struct {
	Slot     string        `json:"slot"`
	From     ModuleID      `json:"from"`
	To       ModuleID      `json:"to"`
	CatchUp  time.Duration `json:"catchUpNs"`
	Drain    time.Duration `json:"drainNs"`
	Switched bool          `json:"switched"`
}

// Swap replaces the slot's module by plan.Next (see the comment at the top).
// On error, Next has been stopped and the old module still serves.
func (s *Slot[T]) Swap(ctx context.Context, plan SwapPlan[T]) (SwapReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	rep := SwapReport{Slot: s.name, From: old.ID, To: plan.Next.MQDModule().ID}
	abandon := func(err error) (SwapReport, error) {
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = RetireModule(stopCtx, plan.Next)
		return rep, fmt.Errorf("swap of %s from %s to %s abandoned, %s stays: %w", s.name, rep.From, rep.To, rep.From, err)
	}
	if err := StartModule(plan.Next); err != nil {
		return abandon(fmt.Errorf("start: %w", err))
	}
	began := time.Now()
	if plan.Ready != nil {
		deadline := time.Now().Add(plan.CatchUp)
		poll := time.NewTicker(2 * time.Millisecond)
		defer poll.Stop()
		for {
			err := plan.Ready(plan.Next)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return abandon(fmt.Errorf("not ready within %v: %w", plan.CatchUp, err))
			}
			select {
			case <-ctx.Done():
				return abandon(fmt.Errorf("cancelled while catching up (%v): %w", ctx.Err(), err))
			case <-poll.C:
			}
		}
	}
	rep.CatchUp = time.Since(began)
	s.cur.Store(&Lease[T]{Value: plan.Next, ID: rep.To})
	rep.Switched = true
	began = time.Now()
	deadline := began.Add(plan.Drain)
	for old.calls.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	rep.Drain = time.Since(began)
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := RetireModule(stopCtx, old.Value); err != nil {
		return rep, fmt.Errorf("swap of %s to %s done; retiring %s: %w", s.name, rep.To, rep.From, err)
	}
	return rep, nil
}

// Close retires the current module (at shutdown).
func (s *Slot[T]) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return RetireModule(ctx, s.cur.Load().Value)
}
