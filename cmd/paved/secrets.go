package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/forge"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/secret"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/sqlite"
)

// openKeys is the keyring secrets are sealed with: PAVED_SECRET_KEY when set (base64 keys,
// comma-separated, the first current), else the key file (default DATA/secret.key, made
// with one new key and mode 0600 when missing).
func openKeys(data, keyFile string) (*secret.Keyring, error) {
	if v := os.Getenv("PAVED_SECRET_KEY"); v != "" {
		if keyFile != "" {
			return nil, usageErr("both PAVED_SECRET_KEY and --secret-key-file are set: use one")
		}
		k, err := secret.FromEnv(v)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		return k, nil
	}
	if keyFile == "" {
		keyFile = filepath.Join(data, "secret.key")
	}
	k, err := secret.OpenFile(keyFile)
	if err != nil {
		return nil, usageErr("--secret-key-file: %v", err)
	}
	return k, nil
}

// resolveSecret reads a team's secret from the store and falls back to the server's
// environment variable PAVED_SECRET_<NAME>, as before paved kept secrets. The one place a
// secret's value comes from, for stages and forge credentials alike.
func resolveSecret(ctx context.Context, svc *secret.Service, p secret.ResolveParams) (string, error) {
	if p.Team != "" {
		v, err := svc.Resolve(ctx, p)
		if err == nil || !errors.Is(err, secret.ErrNotFound) {
			return v, err
		}
	}
	if v, ok := os.LookupEnv("PAVED_SECRET_" + p.Name); ok {
		return v, nil
	}
	if p.Team == "" {
		return "", fmt.Errorf("not set: the run has no team to keep secrets for; start the server with PAVED_SECRET_%s in its environment", p.Name)
	}
	return "", fmt.Errorf("not set: PUT /api/v1/teams/%s/secrets/%s (or start the server with PAVED_SECRET_%s in its environment)",
		p.Team, p.Name, p.Name)
}

// storeSecrets resolves a stage's secret: the run's team's (the deploy environment's before
// the team-wide one), else the server's environment.
func storeSecrets(svc *secret.Service) func(context.Context, schedule.SecretParams) (string, error) {
	return func(ctx context.Context, p schedule.SecretParams) (string, error) {
		team := ""
		if p.Info != nil {
			team = p.Info.Team
		}
		return resolveSecret(ctx, svc, secret.ResolveParams{Team: team, Environment: p.Environment, Name: p.Name,
			Actor: "run:" + p.RunID, RunID: p.RunID, Stage: p.Stage})
	}
}

// forgeSecret resolves a repository's forge credential (the secret its registration
// names) from its team's secrets, else the server's environment.
func forgeSecret(svc *secret.Service) forge.Secret {
	return func(ctx context.Context, team, name string) (string, error) {
		return resolveSecret(ctx, svc, secret.ResolveParams{Team: team, Name: name, Actor: "forge"})
	}
}

// offlineStore is what the secrets and audit commands need of a store.
type offlineStore interface {
	secret.Store
	audit.Store
	Close() error
}

// openOffline opens the store for a command next to (or instead of) a server: unlike the
// server it takes no lock, so it works while the server runs.
func openOffline(ctx context.Context, data, database string) (offlineStore, string, error) {
	if data == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, "", usageErr("no --data given and no user cache dir: %v", err)
		}
		data = filepath.Join(dir, "paved", "server")
	}
	switch {
	case database == "":
		path := filepath.Join(data, "paved.db")
		if _, err := os.Stat(path); err != nil {
			return nil, "", usageErr("no database at %s: give the server's --data DIR or --database URL", path)
		}
		st, err := sqlite.Open(ctx, path)
		return st, data, err
	case strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://"):
		st, err := postgres.Open(ctx, database)
		return st, data, err
	}
	return nil, "", usageErr("--database: want a postgres:// or postgresql:// URL, or nothing for SQLite in the data directory")
}

func secretsCmd() *cobra.Command {
	var data, database, keyFile string
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Teams' encrypted secrets (set and list them through the API: docs/secrets.md)",
	}
	cmd.PersistentFlags().StringVar(&data, "data", envOr("PAVED_DATA", ""), "the server's data directory (env PAVED_DATA; default ~/.cache/paved/server)")
	cmd.PersistentFlags().StringVar(&database, "database", envOr("PAVED_DATABASE", ""), "the server's PostgreSQL (env PAVED_DATABASE; default SQLite in the data directory)")
	cmd.PersistentFlags().StringVar(&keyFile, "secret-key-file", "", "the key file (default DATA/secret.key; PAVED_SECRET_KEY instead holds base64 keys, the first current)")
	rotate := &cobra.Command{
		Use:   "rotate-key",
		Short: "Seal every secret under a new key; the old key stays readable until every secret is re-sealed, then goes",
		Long: `With a key file: writes a new key first in the file, re-seals every secret under it, then
removes the old keys. A server running on the same file picks the new key up by itself.

With PAVED_SECRET_KEY (which paved cannot rewrite): put a new key first in the variable
(NEW,OLD), run rotate-key, then restart the server with only NEW.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, dir, err := openOffline(ctx, data, database)
			if err != nil {
				return err
			}
			defer st.Close()
			keys, err := openKeys(dir, keyFile)
			if err != nil {
				return err
			}
			log, err := audit.New(audit.Config{Store: st, Retention: -1})
			if err != nil {
				return err
			}
			svc, err := secret.New(secret.Config{Store: st, Keys: keys, Audit: log})
			if err != nil {
				return err
			}
			res, err := svc.Rotate(ctx, cliActor())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-sealed %d secrets under key %s\n", res.Resealed, res.Key)
			if len(res.Dropped) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "removed old keys %s from %s\n", strings.Join(res.Dropped, ", "), keys.Path())
			}
			if keys.Path() == "" {
				fmt.Fprintln(cmd.OutOrStdout(), "keep only the first key in PAVED_SECRET_KEY from now on")
			}
			return nil
		},
	}
	cmd.AddCommand(rotate)
	return cmd
}

// cliActor names who runs a command, for the audit log.
func cliActor() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}
