package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/paved/paved/internal/access"
)

// tokenOf is the API token the command sends: --token, or PAVED_TOKEN.
func tokenOf(cmd *cobra.Command) string {
	t, _ := cmd.Flags().GetString("token")
	return t
}

// tokenTransport sends the token to the paved server's registry (host) on requests that
// carry no credentials of their own; other registries get what the Docker config gives.
type tokenTransport struct {
	host, token string
	next        http.RoundTripper
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == t.host && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.next.RoundTrip(r)
}

// useRegistryToken makes the registry client (internal/cache/oci, which uses
// remote.DefaultTransport) send the token to the paved server's registry. main wires it
// before a registry command runs, which is the only one running.
func useRegistryToken(server, token string) {
	u, err := url.Parse(server)
	if token == "" || err != nil || u.Host == "" {
		return
	}
	remote.DefaultTransport = tokenTransport{host: u.Host, token: token, next: remote.DefaultTransport}
}

func serverFlag(cmd *cobra.Command, server *string) {
	cmd.Flags().StringVar(server, "server", envOr("PAVED_SERVER", "http://127.0.0.1:8080"), "paved server URL (env PAVED_SERVER)")
}

func tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Make, list and revoke API tokens (yours; every user's for a server admin)"}
	var server, forUser, name, team, role, expires string
	var allTeams bool
	create := &cobra.Command{
		Use:   "create --team TEAM --role ROLE [--name NAME] [--expires 720h]",
		Short: "Make an API token for you, scoped to a team and a role (no more than yours); prints it once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &client{base: server, token: tokenOf(cmd)}
			var out struct {
				Token string       `json:"token"`
				Info  access.Token `json:"info"`
			}
			body := map[string]any{"user": forUser, "name": name, "team": team, "role": role, "all_teams": allTeams, "expires_in": expires}
			if err := c.post(cmd.Context(), "/api/v1/tokens", body, &out); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s): shown once; send it as Authorization: Bearer TOKEN or PAVED_TOKEN\n", out.Info.ID, scopeOf(out.Info))
			return nil
		},
	}
	serverFlag(create, &server)
	create.Flags().StringVar(&name, "name", "cli", "a label for the token")
	create.Flags().StringVar(&forUser, "user", "", "make it for this user (server admins; default: you)")
	create.Flags().StringVar(&team, "team", "", "the team it acts in")
	create.Flags().StringVar(&role, "role", "viewer", "viewer, developer or admin (no more than your own role in the team)")
	create.Flags().BoolVar(&allTeams, "all-teams", false, "a server admin's token for every team")
	create.Flags().StringVar(&expires, "expires", "", "lifetime, e.g. 720h (default: never expires)")

	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List your tokens (--all: everyone's, for a server admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &client{base: server, token: tokenOf(cmd)}
			var out struct{ Tokens []access.Token }
			path := "/api/v1/tokens"
			if all {
				path += "?all=true"
			}
			if err := c.get(cmd.Context(), path, &out); err != nil {
				return &exitError{code: 1, err: err}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tUSER\tSCOPE\tEXPIRES\tLAST USED\tSTATE")
			for _, t := range out.Tokens {
				state := "active"
				switch {
				case !t.RevokedAt.IsZero():
					state = "revoked"
				case !t.ExpiresAt.IsZero() && time.Now().After(t.ExpiresAt):
					state = "expired"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.User, scopeOf(t), stampOr(t.ExpiresAt, "never"), stampOr(t.LastUsedAt, "never"), state)
			}
			return tw.Flush()
		},
	}
	serverFlag(list, &server)
	list.Flags().BoolVar(&all, "all", false, "every user's tokens (server admins)")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token (yours, or anyone's for a server admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &client{base: server, token: tokenOf(cmd)}
			var t access.Token
			if err := c.do(cmd.Context(), http.MethodDelete, "/api/v1/tokens/"+args[0], nil, &t); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", t.ID)
			return nil
		},
	}
	serverFlag(revoke, &server)
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func scopeOf(t access.Token) string {
	switch {
	case t.AllTeams:
		return "all teams"
	case t.Session:
		return "session"
	}
	return t.Team + ":" + t.Role.String()
}

func stampOr(t time.Time, def string) string {
	if t.IsZero() {
		return def
	}
	return t.Local().Format(time.DateTime)
}

func userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage local users (server admins)"}
	var server, password, teamRole string
	var admin bool
	add := &cobra.Command{
		Use:   "add NAME [--password P | PAVED_PASSWORD] [--admin] [--team TEAM=ROLE]",
		Short: "Add a local user; --team also makes them a member of a team",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &client{base: server, token: tokenOf(cmd)}
			if err := c.post(cmd.Context(), "/api/v1/users", map[string]any{"name": args[0], "password": password, "admin": admin}, nil); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s added\n", args[0])
			if teamRole == "" {
				return nil
			}
			team, role, ok := strings.Cut(teamRole, "=")
			if !ok || team == "" {
				return usageErr("--team %q: want TEAM=ROLE (viewer, developer or admin)", teamRole)
			}
			return memberSet(cmd.Context(), c, team, args[0], role, cmd)
		},
	}
	serverFlag(add, &server)
	add.Flags().StringVar(&password, "password", envOr("PAVED_PASSWORD", ""), "password for logging in to the UI, at least 8 characters (env PAVED_PASSWORD; default none: tokens only)")
	add.Flags().BoolVar(&admin, "admin", false, "make a server admin (every team, users and teams)")
	add.Flags().StringVar(&teamRole, "team", "", "TEAM=ROLE: also add them to TEAM as viewer, developer or admin")
	var pserver string
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a user's password: your own (with your current one), or anyone's as a server admin; ends their other sessions",
		Long: `Change a user's password. It is read from the terminal (asked twice), or else from
stdin: a server admin's first line is the new password; anyone else's first line is their
current password and the second the new one. Never from a flag, which the process list and
the shell's history would show. The user's other login sessions end; API tokens stay.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &client{base: pserver, token: tokenOf(cmd)}
			var me struct {
				User  string
				Admin bool
			}
			if err := c.get(cmd.Context(), "/api/v1/me", &me); err != nil {
				return &exitError{code: 1, err: err}
			}
			current, next, err := readPasswords(cmd, args[0], !me.Admin)
			if err != nil {
				return err
			}
			var out struct {
				SessionsEnded int `json:"sessions_ended"`
			}
			if err := c.do(cmd.Context(), http.MethodPut, "/api/v1/users/"+url.PathEscape(args[0])+"/password",
				map[string]string{"current": current, "password": next}, &out); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed; %d other session(s) ended\n", args[0], out.SessionsEnded)
			return nil
		},
	}
	serverFlag(passwd, &pserver)
	var rserver string
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user (server admins): revokes their tokens and sessions, drops their memberships; their audit entries stay",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &client{base: rserver, token: tokenOf(cmd)}
			if err := c.do(cmd.Context(), http.MethodDelete, "/api/v1/users/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s removed\n", args[0])
			return nil
		},
	}
	serverFlag(remove, &rserver)
	cmd.AddCommand(add, passwd, remove)
	return cmd
}

// readPasswords reads the current password (when asked for) and the new one: from the
// terminal without echo, the new one twice; or else lines of stdin.
func readPasswords(cmd *cobra.Command, user string, withCurrent bool) (current, next string, err error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask := func(prompt string) (string, error) {
			fmt.Fprint(cmd.ErrOrStderr(), prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(cmd.ErrOrStderr())
			return string(b), err
		}
		if withCurrent {
			if current, err = ask("current password of " + user + ": "); err != nil {
				return "", "", err
			}
		}
		if next, err = ask("new password: "); err != nil {
			return "", "", err
		}
		again, err := ask("new password again: ")
		if err != nil {
			return "", "", err
		}
		if again != next {
			return "", "", usageErr("the two new passwords differ; nothing changed")
		}
		return current, next, nil
	}
	sc := bufio.NewScanner(in)
	line := func(what string) (string, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return "", err
			}
			return "", usageErr("stdin ended before the %s (give the current password on the first line and the new one on the second; a server admin gives only the new one)", what)
		}
		return strings.TrimRight(sc.Text(), "\r"), nil
	}
	if withCurrent {
		if current, err = line("current password"); err != nil {
			return "", "", err
		}
	}
	next, err = line("new password")
	return current, next, err
}

func memberSet(ctx context.Context, c *client, team, user, role string, cmd *cobra.Command) error {
	if err := c.do(ctx, http.MethodPut, "/api/v1/teams/"+url.PathEscape(team)+"/members/"+url.PathEscape(user), map[string]string{"role": role}, nil); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s is %s in team %s\n", user, role, team)
	return nil
}

func teamCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "team", Short: "Manage teams (server admins) and their members (team admins)"}
	var server string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a team",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &client{base: server, token: tokenOf(cmd)}
			if err := c.post(cmd.Context(), "/api/v1/teams", map[string]string{"name": args[0]}, nil); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "team %s added\n", args[0])
			return nil
		},
	}
	serverFlag(add, &server)
	var mserver string
	member := &cobra.Command{
		Use:   "member TEAM USER ROLE",
		Short: "Make USER a viewer, developer or admin of TEAM",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return memberSet(cmd.Context(), &client{base: mserver, token: tokenOf(cmd)}, args[0], args[1], args[2], cmd)
		},
	}
	serverFlag(member, &mserver)
	var aserver string
	approver := &cobra.Command{
		Use:   "approver TEAM ENV USER",
		Short: "Let USER (a member of TEAM) approve promotions into ENV",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &client{base: aserver, token: tokenOf(cmd)}
			path := "/api/v1/teams/" + url.PathEscape(args[0]) + "/approvers/" + url.PathEscape(args[1]) + "/" + url.PathEscape(args[2])
			if err := c.do(cmd.Context(), http.MethodPut, path, nil, nil); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s may approve promotions into %s of team %s\n", args[2], args[1], args[0])
			return nil
		},
	}
	serverFlag(approver, &aserver)
	cmd.AddCommand(add, member, approver)
	return cmd
}

// accessOptions are the server's flags about access (docs/access.md).
type accessOptions struct {
	// streamRecheck is how often open streams check their credentials again.
	streamRecheck time.Duration
	// OIDC login: off without an issuer.
	oidcIssuer, oidcClientID, oidcClientSecret string
	oidcUserClaim, oidcTeamClaim               string
	oidcScopes, oidcMap                        []string
}

func (o *accessOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.DurationVar(&o.streamRecheck, "stream-recheck", 10*time.Second, "how often open streams (SSE: run events, logs) check their token or session again: a revoked token, a logout, a removed user ends them within this, on every server of a shared database")
	f.StringVar(&o.oidcIssuer, "oidc-issuer", envOr("PAVED_OIDC_ISSUER", ""), "SSO: the OpenID Provider's issuer URL; the UI's login page then offers \"Sign in with SSO\" (env PAVED_OIDC_ISSUER; default: no SSO)")
	f.StringVar(&o.oidcClientID, "oidc-client-id", envOr("PAVED_OIDC_CLIENT_ID", ""), "SSO: paved's client ID at the provider; its redirect URI is EXTERNAL_URL/api/v1/login/oidc/callback")
	f.StringVar(&o.oidcClientSecret, "oidc-client-secret", "", "SSO: the client's secret (better: env PAVED_OIDC_CLIENT_SECRET, which the process list does not show)")
	f.StringVar(&o.oidcUserClaim, "oidc-user-claim", "preferred_username", "SSO: the ID token claim that is the paved user name")
	f.StringVar(&o.oidcTeamClaim, "oidc-team-claim", "groups", "SSO: the ID token claim listing the user's groups, for --oidc-map")
	f.StringArrayVar(&o.oidcScopes, "oidc-scope", nil, "SSO: a scope to ask for besides openid, profile and email, e.g. groups (repeatable)")
	f.StringArrayVar(&o.oidcMap, "oidc-map", nil, "SSO: GROUP=TEAM:ROLE, members of GROUP get ROLE in TEAM, set again at each login (repeatable)")
}

func (o accessOptions) config(st access.Store, logger *slog.Logger) access.Config {
	return access.Config{Store: st, Logger: logger, RecheckEvery: o.streamRecheck}
}

// startOIDC sets up the SSO login when --oidc-issuer is given: it reads the provider's
// discovery document, so the provider must be reachable at start.
func (o accessOptions) startOIDC(ctx context.Context, acc *access.Service, externalURL func() string) error {
	if o.oidcIssuer == "" {
		if o.oidcClientID != "" || len(o.oidcMap) > 0 {
			return usageErr("--oidc-client-id and --oidc-map need --oidc-issuer")
		}
		return nil
	}
	secret := o.oidcClientSecret
	if secret == "" {
		secret = os.Getenv("PAVED_OIDC_CLIENT_SECRET")
	}
	if o.oidcClientID == "" || secret == "" {
		return usageErr("--oidc-issuer needs --oidc-client-id and a client secret (env PAVED_OIDC_CLIENT_SECRET, or --oidc-client-secret)")
	}
	cfg := access.OIDCConfig{Issuer: o.oidcIssuer, ClientID: o.oidcClientID, ClientSecret: secret,
		RedirectURL: func() string { return externalURL() + "/api/v1/login/oidc/callback" },
		UserClaim:   o.oidcUserClaim, TeamClaim: o.oidcTeamClaim, Scopes: o.oidcScopes}
	for _, m := range o.oidcMap {
		mm, err := access.ParseOIDCMapping(m)
		if err != nil {
			return usageErr("--oidc-map: %v", err)
		}
		cfg.Map = append(cfg.Map, mm)
	}
	if _, err := acc.NewOIDC(ctx, cfg); err != nil {
		return usageErr("--oidc-issuer: %v", err)
	}
	return nil
}
