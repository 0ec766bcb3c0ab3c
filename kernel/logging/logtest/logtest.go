// Package logtest holds log helpers for tests: a sink that many goroutines
// (a module's loops, its handlers) write to while the test reads it.
package logtest

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a goroutine-safe io.Writer for zerolog loggers under test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Contains reports whether s has been written.
func (l *Buffer) Contains(s string) bool { return strings.Contains(l.String(), s) }
