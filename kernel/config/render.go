package config

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Render formats for (*Config).Render.
const (
	// FormatTable is an aligned KEY / VALUE / SOURCE table.
	FormatTable = "table"
	// FormatProperties is one "path = value  # source" line per key.
	FormatProperties = "properties"
)

// RenderOptions selects what (*Config).Render prints.
type RenderOptions struct {
	// Format is FormatTable (the default) or FormatProperties.
	Format string
	// Roles limits the output to keys of these roles and mqd-only keys (Role
	// ""); empty means every key.
	Roles []string
}

// Render writes the merged configuration, one registered key per line, sorted
// by path, with the value and where it came from.
func (c *Config) Render(w io.Writer, opts RenderOptions) error {
	type row struct{ path, value, source string }
	var rows []row
	for _, k := range Keys() {
		if len(opts.Roles) > 0 && k.Role != "" && !slices.Contains(opts.Roles, k.Role) {
			continue
		}
		r := row{path: k.Path, source: c.Source(k.Path)}
		if c.k.Exists(k.Path) {
			r.value = formatValue(c.k.Get(k.Path))
		} else {
			r.source = "unset"
		}
		rows = append(rows, r)
	}
	switch opts.Format {
	case FormatProperties:
		for _, r := range rows {
			if _, err := fmt.Fprintf(w, "%s = %s  # %s\n", r.path, escapeValue(r.value), r.source); err != nil {
				return err
			}
		}
		return nil
	case "", FormatTable:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
		for _, r := range rows {
			v := r.value
			if v == "" {
				v = `""`
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.path, v, r.source)
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown format %q (want %s or %s)", opts.Format, FormatTable, FormatProperties)
	}
}

// escapeValue keeps a rendered value on one line.
func escapeValue(s string) string {
	if !strings.ContainsAny(s, "\n\r") {
		return s
	}
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}
