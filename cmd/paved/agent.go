package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute/agent"
	"github.com/paved/paved/internal/execute/local"
	"github.com/paved/paved/internal/store"
)

func agentCmd() *cobra.Command {
	var (
		servers  []string
		token    string
		labels   []string
		capacity int
		data     string
		sandbox  string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Take stage jobs from paved servers and run them here (docs/scale-out.md)",
		Long: "agent long-polls each --server for stage jobs whose runs_on labels it has, runs them with\n" +
			"the local sandbox in its data directory, streams their output back and uploads their\n" +
			"artifacts. List every server sharing the database: each queues the stages of the runs it\n" +
			"drives. The token comes from `paved agent token create NAME`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				return usageErr("--token (or PAVED_AGENT_TOKEN) is required: create one with `paved agent token create NAME`")
			}
			lbls := map[string]string{}
			for _, l := range labels {
				for _, kv := range strings.Split(l, ",") {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return usageErr("--labels %q: want k=v[,k=v...]", l)
					}
					lbls[k] = v
				}
			}
			var urls []string
			for _, s := range servers {
				urls = append(urls, strings.Split(s, ",")...)
			}
			if data == "" {
				dir, err := os.UserCacheDir()
				if err != nil {
					return usageErr("no --data given and no user cache dir: %v", err)
				}
				data = filepath.Join(dir, "paved", "agent")
			}
			data, err := filepath.Abs(data)
			if err != nil {
				return err
			}
			logger := newLogger()
			blobs, err := cache.NewBlobs(filepath.Join(data, "artifacts"))
			if err != nil {
				return err
			}
			depCache, err := cache.Open(cache.Config{Dir: filepath.Join(data, "cache"), Logger: logger})
			if err != nil {
				return err
			}
			ex, err := local.New(local.Config{Root: filepath.Join(data, "workspaces"), Sandbox: sandbox, Hide: []string{data},
				Cache: depCache, Artifacts: blobs, Logger: logger})
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Config{Servers: urls, Token: token, Labels: lbls, Capacity: capacity, Executor: ex, Blobs: blobs, Logger: logger})
			if err != nil {
				return usageErr("%v", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger.Info("paved agent started", "servers", urls, "labels", lbls, "capacity", capacity, "data", data)
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringArrayVar(&servers, "server", []string{envOr("PAVED_SERVER", "http://127.0.0.1:8080")}, "paved server URL; repeat (or comma-separate) for every server on the database (env PAVED_SERVER)")
	cmd.Flags().StringVar(&token, "token", os.Getenv("PAVED_AGENT_TOKEN"), "this agent's token (env PAVED_AGENT_TOKEN)")
	cmd.Flags().StringArrayVar(&labels, "labels", nil, "k=v[,k=v...]: labels that pipelines' runs_on select (repeatable)")
	cmd.Flags().IntVar(&capacity, "capacity", 1, "jobs that run at once")
	cmd.Flags().StringVar(&data, "data", envOr("PAVED_DATA", ""), "data directory: workspaces, artifacts, caches (env PAVED_DATA; default ~/.cache/paved/agent)")
	cmd.Flags().StringVar(&sandbox, "sandbox", "auto", "stage isolation: auto, bubblewrap or process-group")
	cmd.AddCommand(agentTokenCmd())
	return cmd
}

func agentTokenCmd() *cobra.Command {
	var server string
	cmd := &cobra.Command{Use: "token", Short: "Create, revoke and list agent tokens"}
	cmd.PersistentFlags().StringVar(&server, "server", envOr("PAVED_SERVER", "http://127.0.0.1:8080"), "paved server URL (env PAVED_SERVER)")
	cmd.AddCommand(&cobra.Command{
		Use: "create NAME", Short: "Make a token for agent NAME and print it (shown only once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Token string }
			if err := (&client{base: server}).post(cmd.Context(), "/api/v1/agents", map[string]string{"name": args[0]}, &out); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "revoke NAME", Short: "Revoke agent NAME's token: its requests are refused at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := deleteReq(cmd.Context(), server+"/api/v1/agents/"+args[0]); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List agent tokens and the agents connected to this server", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Tokens    []store.AgentToken `json:"tokens"`
				Connected []agent.Seen       `json:"connected"`
			}
			if err := (&client{base: server}).get(cmd.Context(), "/api/v1/agents", &out); err != nil {
				return &exitError{code: 1, err: err}
			}
			w := cmd.OutOrStdout()
			for _, t := range out.Tokens {
				state := "valid"
				if !t.RevokedAt.IsZero() {
					state = "revoked " + t.RevokedAt.Format("2006-01-02T15:04:05Z")
				}
				fmt.Fprintf(w, "%s\tcreated %s\t%s\n", t.Name, t.CreatedAt.Format("2006-01-02T15:04:05Z"), state)
			}
			for _, s := range out.Connected {
				fmt.Fprintf(w, "connected %s\tlabels %v\trunning %d\tlast seen %s\n", s.Name, s.Labels, s.Running, s.LastSeen.Format("15:04:05"))
			}
			return nil
		},
	})
	return cmd
}

func deleteReq(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("DELETE %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
