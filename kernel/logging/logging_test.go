package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/config"
)

func TestJSONAndLevel(t *testing.T) {
	var b bytes.Buffer
	// A buffer is not a terminal: auto means JSON.
	l, err := New(Options{Level: "warn", Format: FormatAuto, Out: &b})
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Msg("hidden")
	l.Warn().Str("k", "v").Msg("shown")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines: %q", len(lines), b.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	if m["message"] != "shown" || m["level"] != "warn" || m["k"] != "v" || m["time"] == nil {
		t.Errorf("line = %v", m)
	}
}

func TestConsole(t *testing.T) {
	var b bytes.Buffer
	l, err := New(Options{Level: "debug", Format: "console", Out: &b})
	if err != nil {
		t.Fatal(err)
	}
	l.Debug().Str("role", "broker").Msg("listening")
	out := b.String()
	if !strings.Contains(out, "DBG") || !strings.Contains(out, "listening") || !strings.Contains(out, "role=broker") || strings.Contains(out, "\x1b[") {
		t.Errorf("console line = %q", out)
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := New(Options{Level: "loud"}); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("level err = %v", err)
	}
	if _, err := New(Options{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "log.format") {
		t.Errorf("format err = %v", err)
	}
	for in, want := range map[string]zerolog.Level{"": zerolog.InfoLevel, "WARNING": zerolog.WarnLevel, "off": zerolog.Disabled, "trace": zerolog.TraceLevel} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v", in, got, err)
		}
	}
}

func TestFromConfig(t *testing.T) {
	c, err := config.Load(config.LoadOptions{
		Env:           []string{"MQD_LOG_LEVEL=debug"},
		Sets:          []string{"log.format=json"},
		ProfileSource: func(string) ([]byte, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	o, err := FromConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if o.Level != "debug" || o.Format != "json" {
		t.Errorf("options = %+v", o)
	}
}
