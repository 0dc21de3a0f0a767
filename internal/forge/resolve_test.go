package forge_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/forge"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

func TestResolverPicksClientByRegistration(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, r := range []trigger.Repo{
		{FullName: "a/gh", Provider: "github", ForgeCredential: "GH"},
		{FullName: "a/gl", Provider: "gitlab", ForgeCredential: "GL", ForgeAPI: "https://gitlab.example.com/api/v4"},
		{FullName: "a/bb", Provider: "bitbucket", ForgeCredential: "BB"},
		{FullName: "a/none", Provider: "github"},
		{FullName: "a/missing", Provider: "github", ForgeCredential: "NOPE"},
	} {
		r.CloneURL, r.Team = "/x", "t"
		if err := st.RepoPut(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	resolve := forge.Resolver(st.RepoGet, func(_ context.Context, _, name string) (string, error) {
		if name == "NOPE" {
			return "", errors.New("not set")
		}
		return "token-" + name, nil
	}, nil)
	for repo, want := range map[string]string{"a/gh": "*forge.GitHub", "a/gl": "*forge.GitLab", "a/bb": "*forge.Bitbucket",
		"a/none": "<nil>", "a/unregistered": "<nil>"} {
		f, err := resolve(t.Context(), repo)
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		if got := typeName(f); got != want {
			t.Errorf("%s: %s, want %s", repo, got, want)
		}
	}
	if _, err := resolve(t.Context(), "a/missing"); err == nil || !strings.Contains(err.Error(), "forge credential NOPE of a/missing") {
		t.Fatalf("missing secret: %v", err)
	}
}

func typeName(f forge.Forge) string {
	switch f.(type) {
	case *forge.GitHub:
		return "*forge.GitHub"
	case *forge.GitLab:
		return "*forge.GitLab"
	case *forge.Bitbucket:
		return "*forge.Bitbucket"
	case nil:
		return "<nil>"
	}
	return "?"
}
