package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/store"
)

// auditedStore is the server's store with deployments and promotions audited as they are
// written: the deploy controller and the promotion service record through it without
// knowing about the audit log. A write whose entry cannot be recorded still happened, so
// the failure is logged loudly rather than undoing it.
type auditedStore struct {
	serverStore
	log *audit.Log
	err func(action string, err error)
}

func (s auditedStore) DeploymentAppend(ctx context.Context, d store.Deployment) error {
	if err := s.serverStore.DeploymentAppend(ctx, d); err != nil {
		return err
	}
	e := audit.DeploymentStarted(d)
	s.check(e.Action, s.log.Record(ctx, e))
	return nil
}

func (s auditedStore) DeploymentFinish(ctx context.Context, p store.DeploymentFinishParams) error {
	if err := s.serverStore.DeploymentFinish(ctx, p); err != nil {
		return err
	}
	env := ""
	if d, err := s.serverStore.DeploymentGet(ctx, p.ID); err == nil {
		env = d.Environment
	}
	e := audit.DeploymentFinished(p, env)
	s.check(e.Action, s.log.Record(ctx, e))
	return nil
}

func (s auditedStore) PromotionAppend(ctx context.Context, p store.Promotion) error {
	if err := s.serverStore.PromotionAppend(ctx, p); err != nil {
		return err
	}
	s.check(audit.ActionPromote, s.log.Record(ctx, audit.PromotionCreated(p)))
	return nil
}

func (s auditedStore) PromotionUpdate(ctx context.Context, p store.Promotion) (store.Promotion, error) {
	prev, err := s.serverStore.PromotionGet(ctx, p.ID)
	if err != nil {
		return store.Promotion{}, err
	}
	next, err := s.serverStore.PromotionUpdate(ctx, p)
	if err != nil {
		return next, err
	}
	s.check(audit.ActionApprove, s.log.RecordAll(ctx, audit.PromotionDecisions(prev, next)...))
	return next, nil
}

func (s auditedStore) check(action string, err error) {
	if err != nil && s.err != nil {
		s.err(action, err)
	}
}

func auditCmd() *cobra.Command {
	var data, database string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The hash-chained audit log: verify the chain, list entries (docs/audit.md)",
	}
	cmd.PersistentFlags().StringVar(&data, "data", envOr("PAVED_DATA", ""), "the server's data directory (env PAVED_DATA; default ~/.cache/paved/server)")
	cmd.PersistentFlags().StringVar(&database, "database", envOr("PAVED_DATABASE", ""), "the server's PostgreSQL (env PAVED_DATABASE; default SQLite in the data directory)")
	open := func(ctx context.Context) (*audit.Log, func() error, error) {
		st, _, err := openOffline(ctx, data, database)
		if err != nil {
			return nil, nil, err
		}
		l, err := audit.New(audit.Config{Store: st, Retention: -1})
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return l, st.Close, nil
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every entry's hash and link; exit 1 naming the first entry that was changed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, done, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			r, err := l.Verify(cmd.Context())
			if errors.Is(err, audit.ErrTampered) {
				return &exitError{code: 1, err: err}
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ok: %d entries verify", r.Entries)
			if r.Anchor.Seq > 0 {
				fmt.Fprintf(out, " from the retention anchor after entry %d", r.Anchor.Seq)
			}
			fmt.Fprintf(out, "\nhead: entry %d %s (keep it elsewhere to detect a truncated log)\n", r.Head.Seq, r.Head.Hash)
			return nil
		},
	}
	var p store.AuditListParams
	var since, until string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List entries in order (--actor, --action, --team, --since, --until RFC 3339)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct {
				name, v string
				to      *time.Time
			}{{"since", since, &p.Since}, {"until", until, &p.Until}} {
				if f.v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, f.v)
				if err != nil {
					return usageErr("--%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", f.name, f.v)
				}
				*f.to = t
			}
			l, done, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			entries, err := l.List(cmd.Context(), p)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			for _, e := range entries {
				fmt.Fprintf(out, "%d  %s  %-20s %-16s team=%s target=%s %s\n", e.Seq, e.Time.Format(time.RFC3339), e.Action, e.Actor,
					e.Team, e.Target, e.Details)
			}
			return nil
		},
	}
	list.Flags().StringVar(&p.Actor, "actor", "", "only this actor's entries")
	list.Flags().StringVar(&p.Action, "action", "", "only this action (secret.read, approval.grant, deployment.start, ...)")
	list.Flags().StringVar(&p.Team, "team", "", "only this team's entries")
	list.Flags().StringVar(&since, "since", "", "entries at or after this time (RFC 3339)")
	list.Flags().StringVar(&until, "until", "", "entries before this time (RFC 3339)")
	list.Flags().IntVar(&p.Limit, "limit", 100, "at most this many entries")
	list.Flags().Int64Var(&p.AfterSeq, "after", 0, "entries after this seq (to page)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(verify, list)
	return cmd
}
