// Command paved is the one binary of paved: server, run, validate, demo. main only wires:
// it reads flags, environment and files, builds the parts and starts them.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/execute/local"
)

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// usageErr is exit code 2: the user's mistake (flags, files).
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	// The sandbox re-executes this binary as the init process of a stage; nothing else runs then.
	if len(os.Args) > 1 && os.Args[1] == local.InitArg {
		os.Exit(local.RunInit(os.Args[2:]))
	}
	root := &cobra.Command{
		Use:           "paved",
		Short:         "paved: from git push to verified production, in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), validateCmd(), serverCmd(), agentCmd(), demoCmd())
	root.AddCommand(artifactCmd(), imageCmd())
	root.AddCommand(verifyCmd(), keysCmd())
	root.AddCommand(initCmd(), rollbackCmd())
	root.AddCommand(promoteCmd(), decideCmd(true), decideCmd(false))
	root.AddCommand(secretsCmd(), auditCmd())
	root.AddCommand(tokenCmd(), userCmd(), teamCmd())
	root.PersistentFlags().String("token", os.Getenv("PAVED_TOKEN"), "API token for commands that call the server (env PAVED_TOKEN)")
	err := root.Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "paved:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "paved:", err)
	os.Exit(2) // cobra's own errors are usage errors: unknown flag or command
}
