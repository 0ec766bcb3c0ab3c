package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
)

// signals turns SIGINT/SIGTERM into a one-time stop request (a second one calls
// onSecond) and SIGHUP into a reload request.
type signals struct {
	ch       chan os.Signal
	stopping chan struct{} // closed on the first SIGINT or SIGTERM
	hup      chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	first   os.Signal
	firstAt time.Time
}

// duplicateWindow is how soon after the first stop signal a second one is taken
// as the same request: tools such as timeout(1) signal both the process and its
// group, so one "stop" can arrive twice within microseconds. An operator's
// deliberate second Ctrl-C comes later than this.
const duplicateWindow = 250 * time.Millisecond

func newSignals(onSecond func(os.Signal)) *signals {
	s := &signals{
		ch:       make(chan os.Signal, 4),
		stopping: make(chan struct{}),
		hup:      make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	signal.Notify(s.ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	s.wg.Add(1)
	go s.loop(onSecond)
	return s
}

func (s *signals) loop(onSecond func(os.Signal)) {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case sig := <-s.ch:
			if sig == syscall.SIGHUP {
				select {
				case s.hup <- struct{}{}:
				default: // one pending reload request is enough
				}
				continue
			}
			s.mu.Lock()
			first := s.first == nil
			duplicate := !first && time.Since(s.firstAt) < duplicateWindow
			if first {
				s.first, s.firstAt = sig, time.Now()
			}
			s.mu.Unlock()
			switch {
			case first:
				close(s.stopping)
			case !duplicate:
				onSecond(sig)
			}
		}
	}
}

// received returns the first stop signal.
func (s *signals) received() os.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

func (s *signals) close() {
	signal.Stop(s.ch)
	close(s.done)
	s.wg.Wait()
}

// reload re-reads the configuration (SIGHUP, or POST /reload on the admin
// endpoint) and lets the kernel apply what may change live; a refused reload
// leaves everything as it was. It returns the changed keys.
func reload(ctx context.Context, k *kernel.Kernel, mode string, o *options, sys IO, logger zerolog.Logger) ([]string, error) {
	cfg, err := loadConfig(mode, o, sys)
	if err != nil {
		logger.Error().Err(err).Msg("reload: configuration not loaded; nothing changed")
		return nil, fmt.Errorf("configuration not loaded; nothing changed: %w", err)
	}
	// Values derived at startup (the embedded mode's free name-server port
	// and the broker's namesrvAddr pointing at it) stay as they were.
	cur := k.Config()
	for _, p := range []string{"namesrv.listenPort", "broker.namesrvAddr"} {
		if strings.HasPrefix(cur.Source(p), "embedded") && strings.HasPrefix(cfg.Source(p), "embedded") {
			if err := cfg.Set(p, cur.Get(p), cur.Source(p)); err != nil {
				logger.Error().Err(err).Msg("reload: configuration not loaded; nothing changed")
				return nil, err
			}
		}
	}
	changed, err := k.Reload(ctx, cfg)
	switch {
	case err != nil:
		logger.Error().Err(err).Strs("changed", changed).Msg("reload refused; nothing changed")
	case len(changed) == 0:
		logger.Info().Msg("reload: configuration unchanged")
	default:
		logger.Info().Strs("changed", changed).Msg("reload applied")
	}
	return changed, err
}
