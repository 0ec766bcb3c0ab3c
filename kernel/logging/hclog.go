package logging

import (
	"encoding/json"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// HCLog is an hclog logger for the HashiCorp libraries mqd uses (go-plugin
// and the lines plugins write to stderr, which go-plugin parses into level,
// message and fields; raft in the controller). It renders JSON and the writer
// below re-emits each line through mqd's zerolog logger under name, so their
// logs land where mqd's do, in its format. minLevel raises the floor for a
// chatty library (raft logs every heartbeat failure at warn); hclog.NoLevel
// keeps mqd's own level.
func HCLog(log zerolog.Logger, name string, minLevel hclog.Level) hclog.Logger {
	level := hclog.Info
	if log.GetLevel() <= zerolog.DebugLevel {
		level = hclog.Debug
	}
	if minLevel != hclog.NoLevel && minLevel > level {
		level = minLevel
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Output:     &zerologWriter{log: log},
		Level:      level,
		JSONFormat: true,
	})
}

// zerologWriter takes hclog's JSON lines (one per Write).
type zerologWriter struct{ log zerolog.Logger }

var _ io.Writer = (*zerologWriter)(nil)

func (w *zerologWriter) Write(p []byte) (int, error) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		w.log.Info().Msg(strings.TrimSpace(string(p)))
		return len(p), nil
	}
	lvl, _ := rec["@level"].(string)
	msg, _ := rec["@message"].(string)
	mod, _ := rec["@module"].(string)
	delete(rec, "@level")
	delete(rec, "@message")
	delete(rec, "@module")
	delete(rec, "@timestamp")
	e := w.log.WithLevel(zerologLevel(lvl))
	if mod != "" {
		e = e.Str("source", mod)
	}
	e.Fields(rec).Msg(msg)
	return len(p), nil
}

func zerologLevel(l string) zerolog.Level {
	switch l {
	case "trace":
		return zerolog.TraceLevel
	case "debug":
		return zerolog.DebugLevel
	case "warn":
		return zerolog.WarnLevel
	case "error":
		return zerolog.ErrorLevel
	}
	return zerolog.InfoLevel
}
