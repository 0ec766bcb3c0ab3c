package pluginhost

import (
	"encoding/json"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// newLogAdapter is the hclog logger go-plugin writes to: its own messages
// and every line the plugin writes to stderr (the SDK logs JSON lines, which
// go-plugin parses into level, message and fields). The adapter renders
// them as JSON and the writer below re-emits each one through mqd's zerolog
// logger with the plugin's name, so plugin logs land where mqd's do, in its
// format and at its level.
func newLogAdapter(log zerolog.Logger, name string) hclog.Logger {
	level := hclog.Info
	if log.GetLevel() <= zerolog.DebugLevel {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin." + name,
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
