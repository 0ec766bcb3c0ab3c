// Package cmdline holds what the mqd, mqadmin and mqbench command lines share,
// so that the three behave alike: cobra commands with --help and a
// `completion` subcommand, errors reported on one line, and the same exit
// codes.
package cmdline

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes of every binary.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran and failed
	ExitUsage   = 2 // the command line is wrong; nothing was done
)

// UsageError is a command-line mistake: it exits with ExitUsage and a hint to
// run --help.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}

// Execute runs root with args (without the program name) and returns the exit
// code. An error is printed to stderr as "<command path>: <message>" on one
// line; a usage mistake adds a line pointing at --help.
func Execute(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Errors are reported here, in one place and one format.
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError{err} })
	cmd, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	name := root.Name()
	if cmd != nil {
		name = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, OneLine(err.Error()))
	if IsUsage(err) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", name)
		return ExitUsage
	}
	return ExitFailure
}

// cobraUsageErrors are the beginnings of the plain errors cobra returns for
// command lines it rejects itself (unknown subcommands, positional argument
// counts, required flags and flag groups); it has no error type for them.
var cobraUsageErrors = []string{
	"unknown command ",
	"accepts ",
	"requires at least ",
	"required flag(s) ",
	"if any flags in the group ",
	"at least one of the flags in the group ",
}

// IsUsage reports whether err is a command-line mistake.
func IsUsage(err error) bool {
	var ue UsageError
	if errors.As(err, &ue) {
		return true
	}
	msg := err.Error()
	for _, p := range cobraUsageErrors {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// OneLine folds a multi-line message (cobra's suggestions, joined errors) into
// one line, so that each failure is one line on stderr.
func OneLine(msg string) string {
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// RequireSubcommand makes c, a command that only groups others, fail with a
// usage error when it is run without a known subcommand; cobra's default
// would print the help and exit 0, which hides the mistake from scripts.
func RequireSubcommand(c *cobra.Command) {
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2 // cobra's own default for its suggestions
			}
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return UsageError{errors.New(msg)}
		}
		var names []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && sub.Name() != "help" && sub.Name() != "completion" {
				names = append(names, sub.Name())
			}
		}
		if len(names) > 4 { // too many for one line: --help lists them
			return Usagef("missing command")
		}
		return Usagef("missing command: %s", strings.Join(names, ", "))
	}
}

// NoArgs rejects positional arguments as a usage error.
func NoArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return Usagef("unexpected argument %q", args[0])
	}
	return nil
}

// ExactArgs wants n positional arguments, or it is a usage error.
func ExactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return Usagef("want %d argument(s) (%s), got %d", n, c.Use, len(args))
		}
		return nil
	}
}

// DeprecatedAlias defines old as a hidden, deprecated second name of the flag
// canonical (already defined in fs), so that command lines written with the
// old name keep working while help shows one name.
func DeprecatedAlias(fs *pflag.FlagSet, canonical, old string) {
	f := fs.Lookup(canonical)
	if f == nil {
		panic("cmdline: no flag --" + canonical)
	}
	fs.Var(f.Value, old, f.Usage)
	_ = fs.MarkDeprecated(old, "use --"+canonical)
}

// CompleteValues makes shell completion offer values for the flag name of c.
func CompleteValues(c *cobra.Command, name string, values ...string) {
	_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}
