// Package logging builds mqd's zerolog logger from the log.* configuration keys:
// the level (log.level) and the format (log.format: a human-readable console
// format when stderr is a terminal, JSON lines otherwise, or either forced).
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/mqd/mqd/kernel/config"
)

// Formats accepted by log.format.
const (
	FormatAuto    = "auto"
	FormatConsole = "console"
	FormatJSON    = "json"
)

func init() {
	config.Register(
		config.Key{Path: "log.level", Default: "info", Doc: "log level: trace, debug, info, warn, error or disabled"},
		config.Key{Path: "log.format", Default: FormatAuto, Doc: "log format: auto (console on a terminal, JSON otherwise), console or json"},
	)
}

// Options configure New.
type Options struct {
	Level  string `koanf:"level"`  // "" means info
	Format string `koanf:"format"` // "" means auto
	// Out receives the log lines; nil means os.Stderr.
	Out io.Writer
}

// FromConfig reads the log.* keys.
func FromConfig(c *config.Config) (Options, error) {
	var o Options
	if err := c.Unmarshal("log", &o); err != nil {
		return o, fmt.Errorf("log config: %w", err)
	}
	return o, nil
}

// ParseLevel accepts zerolog's level names plus "warning" and "off".
func ParseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return zerolog.InfoLevel, nil
	case "warning":
		return zerolog.WarnLevel, nil
	case "off", "none":
		return zerolog.Disabled, nil
	}
	l, err := zerolog.ParseLevel(strings.ToLower(strings.TrimSpace(s)))
	if err != nil || l == zerolog.NoLevel {
		return 0, fmt.Errorf("log.level %q: want trace, debug, info, warn, error, fatal, panic or disabled", s)
	}
	return l, nil
}

var setGlobals sync.Once

// New returns a logger writing to opts.Out (stderr by default) at opts.Level in
// opts.Format, with a timestamp on every line.
func New(opts Options) (zerolog.Logger, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return zerolog.Nop(), err
	}
	out := opts.Out
	if out == nil {
		out = os.Stderr
	}
	format := strings.ToLower(strings.TrimSpace(opts.Format))
	switch format {
	case "", FormatAuto:
		format = FormatJSON
		if isTerminal(out) {
			format = FormatConsole
		}
	case FormatConsole, FormatJSON:
	default:
		return zerolog.Nop(), fmt.Errorf("log.format %q: want auto, console or json", opts.Format)
	}
	setGlobals.Do(func() {
		// Millisecond timestamps: enough to order events, short to read.
		zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
		zerolog.DurationFieldUnit = time.Millisecond
		zerolog.DurationFieldInteger = false
	})
	w := out
	if format == FormatConsole {
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000", NoColor: !isTerminal(out)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
