package cmdline

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// testRoot is a small tree: "tool run [--addr A | --old-addr A] [--must X]"
// and "tool fail"; run records the address it got.
func testRoot(got *string) *cobra.Command {
	root := &cobra.Command{Use: "tool"}
	RequireSubcommand(root)
	run := &cobra.Command{Use: "run", Args: NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	run.Flags().StringVar(got, "addr", "", "address")
	DeprecatedAlias(run.Flags(), "addr", "old-addr")
	need := &cobra.Command{Use: "need", Args: NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	need.Flags().String("must", "", "")
	_ = need.MarkFlagRequired("must")
	fail := &cobra.Command{Use: "fail", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error {
		return errors.New("it broke\nbadly")
	}}
	root.AddCommand(run, need, fail)
	return root
}

func TestExecuteExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		stderrHead string
	}{
		{[]string{"run"}, ExitOK, ""},
		{[]string{"run", "--help"}, ExitOK, ""},
		{[]string{"completion", "bash"}, ExitOK, ""},
		{[]string{"fail", "x"}, ExitFailure, "tool fail: it broke; badly\n"},
		{nil, ExitUsage, "tool: missing command: fail, need, run\n"},
		{[]string{"rn"}, ExitUsage, `tool: unknown command "rn" for "tool"; did you mean run?` + "\n"},
		{[]string{"run", "--bogus"}, ExitUsage, "tool run: unknown flag: --bogus\n"},
		{[]string{"run", "extra"}, ExitUsage, `tool run: unexpected argument "extra"` + "\n"},
		{[]string{"fail"}, ExitUsage, "tool fail: accepts 1 arg(s), received 0\n"},
		{[]string{"need"}, ExitUsage, `tool need: required flag(s) "must" not set` + "\n"},
	} {
		var got string
		var out, errOut bytes.Buffer
		code := Execute(testRoot(&got), tc.args, &out, &errOut)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errOut.String())
		}
		if !strings.HasPrefix(errOut.String(), tc.stderrHead) {
			t.Errorf("%v: stderr %q, want it to begin %q", tc.args, errOut.String(), tc.stderrHead)
		}
		if tc.code == ExitUsage && !strings.HasSuffix(errOut.String(), "--help' for usage.\n") {
			t.Errorf("%v: no pointer to --help in %q", tc.args, errOut.String())
		}
	}
}

func TestDeprecatedAlias(t *testing.T) {
	for _, name := range []string{"--addr", "--old-addr"} {
		var got string
		var out, errOut bytes.Buffer
		if code := Execute(testRoot(&got), []string{"run", name, "h:1"}, &out, &errOut); code != ExitOK || got != "h:1" {
			t.Errorf("run %s h:1: exit %d, address %q, stderr %q", name, code, got, errOut.String())
		}
	}
	var got string
	var out, errOut bytes.Buffer
	Execute(testRoot(&got), []string{"run", "--help"}, &out, &errOut)
	if !strings.Contains(out.String(), "--addr") || strings.Contains(out.String(), "--old-addr") {
		t.Errorf("help shows the alias or hides the flag:\n%s", out.String())
	}
}
