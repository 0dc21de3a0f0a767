package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/store"
)

// promoteCall sends a JSON request with the API token and decodes the answer, or returns
// the server's error message.
func promoteCall(ctx context.Context, method, url, token string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return json.Unmarshal(b, out)
}

func printPromotion(w io.Writer, p store.Promotion) {
	fmt.Fprintf(w, "%s: %s to %s: %s\n", p.ID, p.Freight, p.Environment, p.State)
	if p.Reason != "" {
		fmt.Fprintf(w, "  %s\n", p.Reason)
	}
	fmt.Fprintf(w, "  risk %s (%s), %d approval(s) needed\n", p.Risk, p.RiskReason, p.RequiredApprovals)
	if p.Hotfix {
		fmt.Fprintf(w, "  HOTFIX: %s\n", p.HotfixReason)
		for _, sk := range p.Skipped {
			fmt.Fprintf(w, "  skipped %s\n", sk)
		}
		if fu := p.FollowUp; fu != nil && fu.RunID != "" {
			fmt.Fprintf(w, "  follow-up run %s (%s) %s\n", fu.RunID, strings.Join(fu.Stages, ", "), fu.Summary)
		} else if fu != nil {
			fmt.Fprintf(w, "  %s\n", fu.Note)
		}
	}
	for _, d := range p.Decisions {
		verdict := "approved"
		if !d.Approved {
			verdict = "rejected"
		}
		fmt.Fprintf(w, "  %s by %s: %s\n", verdict, d.By, d.Reason)
	}
}

// waitPromotion polls until the promotion leaves the states that move by themselves.
func waitPromotion(ctx context.Context, server, token string, p store.Promotion) (store.Promotion, error) {
	for p.State == store.PromotionApproved || p.State == store.PromotionDeploying {
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if err := promoteCall(ctx, http.MethodGet, server+"/api/v1/promotions/"+p.ID, token, nil, &p); err != nil {
			return p, err
		}
	}
	return p, nil
}

func finishPromotion(cmd *cobra.Command, server string, p store.Promotion, wait bool) error {
	var err error
	if wait {
		if p, err = waitPromotion(cmd.Context(), server, tokenOf(cmd), p); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	printPromotion(cmd.OutOrStdout(), p)
	if p.State == store.PromotionFailed || p.State == store.PromotionRejected {
		return &exitError{code: 1}
	}
	return nil
}

func promoteCmd() *cobra.Command {
	var server, to, reason string
	var wait, hotfix bool
	cmd := &cobra.Command{
		Use:   "promote FREIGHT --to ENV [--hotfix --reason R]",
		Short: "Promote a freight (its ID or f-alias) into an environment",
		Long: "promote asks the server to move FREIGHT (GET /api/v1/freight lists them) into ENV. The\n" +
			"promotion is blocked while a policy rule holds it (it says which), waits for approvals\n" +
			"by its risk, then deploys exactly the freight's digests. --wait follows the deployment.\n" +
			"--hotfix (by a user in the environment's hotfix_users, with --reason) skips the gates\n" +
			"but secret detection and CRITICAL vulnerabilities, coverage, verified and soak, needs one\n" +
			"approval at most, and starts a follow-up run of the skipped gates (docs/promote.md).\n" +
			"Exit 1 if it failed or was rejected.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageErr("promote: say where with --to ENV")
			}
			if hotfix && strings.TrimSpace(reason) == "" {
				return usageErr("promote: a hotfix needs --reason (what is broken and why it cannot wait)")
			}
			var p store.Promotion
			body := map[string]any{"freight": args[0], "environment": to}
			if hotfix {
				body["hotfix"], body["reason"] = true, reason
			}
			if err := promoteCall(cmd.Context(), http.MethodPost, server+"/api/v1/promotions", tokenOf(cmd), body, &p); err != nil {
				return &exitError{code: 1, err: err}
			}
			return finishPromotion(cmd, server, p, wait)
		},
	}
	cmd.Flags().StringVar(&server, "server", envOr("PAVED_SERVER", "http://127.0.0.1:8080"), "paved server URL (env PAVED_SERVER)")
	cmd.Flags().StringVar(&to, "to", "", "environment to promote into")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for an approved promotion's deployment to end")
	cmd.Flags().BoolVar(&hotfix, "hotfix", false, "an emergency promotion: skips the non-critical gates and rules (needs --reason and hotfix_users)")
	cmd.Flags().StringVar(&reason, "reason", "", "why the hotfix cannot wait (recorded in the audit trail)")
	return cmd
}

func decideCmd(approve bool) *cobra.Command {
	var server, reason string
	var wait bool
	verb := map[bool]string{true: "approve", false: "reject"}[approve]
	cmd := &cobra.Command{
		Use:   verb + " PROMOTION",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a promotion waiting for approval",
		Long: verb + " records your decision on PROMOTION (GET /api/v1/approvals lists those waiting),\n" +
			"with --reason. The author of the change cannot approve it; one rejection fails the\n" +
			"promotion; the last approval it needs starts its deployment.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !approve && reason == "" {
				return usageErr("reject: say why with --reason")
			}
			var p store.Promotion
			err := promoteCall(cmd.Context(), http.MethodPost, server+"/api/v1/approvals/"+args[0]+"/"+verb, tokenOf(cmd), map[string]string{"reason": reason}, &p)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return finishPromotion(cmd, server, p, wait)
		},
	}
	cmd.Flags().StringVar(&server, "server", envOr("PAVED_SERVER", "http://127.0.0.1:8080"), "paved server URL (env PAVED_SERVER)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the decision)")
	if approve {
		cmd.Flags().BoolVar(&wait, "wait", false, "wait for the deployment the approval starts to end")
	}
	return cmd
}
