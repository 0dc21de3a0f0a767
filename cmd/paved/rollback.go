package main

import (
	"fmt"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/store"
)

func rollbackCmd() *cobra.Command {
	var server, to string
	cmd := &cobra.Command{
		Use:   "rollback ENV",
		Short: "Redeploy an earlier deployment of an environment (default: the one before what runs)",
		Long: "rollback asks the server to redeploy an earlier recorded deployment of ENV: its artifact\n" +
			"with its settings, all replicas at once (or by switching back to blue while blue-green\n" +
			"keeps it warm). --to DEPLOYMENT picks one from GET /api/v1/environments/ENV/deployments.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			by := "paved rollback"
			if u, err := user.Current(); err == nil {
				by += " by " + u.Username
			}
			c := &client{base: server, token: tokenOf(cmd)}
			var d store.Deployment
			err := c.post(cmd.Context(), "/api/v1/environments/"+args[0]+"/rollback", map[string]string{"to": to, "by": by}, &d)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: deployment %s of %s (rollback to %s): %s\n", args[0], d.ID, d.Version, d.RollbackOf, d.Outcome)
			if d.Reason != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", d.Reason)
			}
			if d.Outcome != store.DeploymentSucceeded {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", envOr("PAVED_SERVER", "http://127.0.0.1:8080"), "paved server URL (env PAVED_SERVER)")
	cmd.Flags().StringVar(&to, "to", "", "deployment id to redeploy (default: the last successful one before what runs)")
	return cmd
}
